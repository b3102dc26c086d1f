"""Image observations on real code paths: the encoder's shapes and crops, lift-image's rendered
episodes through the store and robomimic HDF5, a quick lift-image run end to end, and its agent served
to the sim robot with uint8 pictures on the wire and in the recording."""

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from borl.agent import Agent
from borl.cli import main
from borl.config import QUICK, RunConfig, build_config, merge
from borl.data.normalization import Normalizer
from borl.data.observations import ObservationSpec, centre_crop, random_crop
from borl.data.store import EpisodeStore
from borl.envs.demos import make_attempt
from borl.envs.registry import get_task
from borl.errors import BorlError
from borl.formats.robomimic import read_robomimic, write_robomimic
from borl.policies.vision import EncoderConfig, ObservationEncoder, ResNet
from borl.robot.client import LocalPolicy
from borl.robot.drive import drive
from borl.robot.recorder import EpisodeRecorder
from borl.robot.sim import SimRobot
from borl.train import overlaps, train_agent

pytestmark = pytest.mark.usefixtures("one_thread")

TASK = get_task("lift-image")
SPEC = TASK.spec
TINY = merge(EncoderConfig(), QUICK["encoder"])
# The quick run made smaller still: 12-step episodes, 10 updates, 2 evaluation episodes.
QUICK_IMAGE_RUN = ["--quick", "--horizon", "12", "--eval-episodes", "2", "--rollouts", "2", "--quiet"]
QUICK_IMAGE_RUN += ["--set", "train.policy_steps=10", "--set", "train.critic_steps=10", "--set", "demos=2"]


def test_the_encoder_reads_each_camera_and_keeps_the_low_dim_keys():
    spec = ObservationSpec(9, ("agentview", "robot0_eye_in_hand"), 84)
    encoder = ObservationEncoder(spec, TINY)
    obs = torch.cat([torch.randn(5, 9), torch.randint(0, 256, (5, 2 * 3 * 76 * 76)).float()], dim=1)
    assert obs.shape[1] == spec.network_dim(76) == encoder.in_dim
    out = encoder(obs)
    assert out.shape == (5, 9 + 2 * TINY.features) == (5, encoder.out_dim)
    assert torch.equal(out[:, :9], obs[:, :9])
    # ResNet-18's stages at the 76x76 crop end at 512 channels of 3x3, with no BatchNorm anywhere
    resnet = ResNet((64, 128, 256, 512), 2, 16)
    assert resnet(torch.zeros(2, 3, 76, 76)).shape == (2, 512, 3, 3)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in resnet.modules())
    assert sum(p.numel() for p in resnet.parameters()) == 11_176_512  # torchvision's resnet18 minus fc
    with pytest.raises(BorlError, match="encoder.crop"):
        ObservationEncoder(spec, merge(TINY, {"crop": 90}))


def test_crops_are_windows_of_the_picture_random_in_training_centred_when_acting():
    pictures = torch.randint(0, 256, (2, 2, 3, 84, 84), generator=torch.Generator().manual_seed(1))
    pictures = pictures.to(torch.uint8)
    centre = centre_crop(pictures, 76)
    assert torch.equal(centre, pictures[..., 4:80, 4:80])
    first = random_crop(pictures, 76, torch.Generator().manual_seed(0))
    again = random_crop(pictures, 76, torch.Generator().manual_seed(0))
    assert first.shape == (2, 2, 3, 76, 76) and torch.equal(first, again)
    offsets = set()
    for row in range(2):
        for camera in range(2):
            found = [
                (top, left)
                for top in range(9)
                for left in range(9)
                if torch.equal(first[row, camera], pictures[row, camera, :, top : top + 76, left : left + 76])
            ]
            assert len(found) == 1
            offsets.add(found[0])
    assert len(offsets) > 1  # each row and camera its own offset


@pytest.fixture(scope="module")
def image_episode():
    """A rendered lift-image demonstration attempt, cut to 6 steps."""
    env = TASK.make_env(horizon=6)
    try:
        return make_attempt(TASK, env, seed=0, attempt=0, noise=0.1)
    finally:
        env.close()


def test_an_image_episode_round_trips_through_the_store_and_robomimic(image_episode, tmp_path):
    episode = image_episode
    assert episode.observations.shape == (7, SPEC.obs_dim) and episode.images.dtype == np.uint8
    assert episode.images.shape == (7, 2, 84, 84, 3) and episode.images.std() > 10  # a real picture
    store = EpisodeStore(tmp_path / "store")
    path = store.append(episode)
    (loaded,) = store.load()
    assert np.array_equal(loaded.images, episode.images)
    assert np.array_equal(loaded.observations, episode.observations)
    assert path.stat().st_size < episode.images.nbytes / 2  # compressed

    # a store written before the frame deltas kept the pictures themselves: it still loads
    with np.load(path) as f:
        arrays = {key: f[key] for key in f.files if key not in ("images", "images_shape")}
    np.savez_compressed(path, images=episode.images, **arrays)
    (older,) = store.load()
    assert np.array_equal(older.images, episode.images)

    out = tmp_path / "images.hdf5"
    write_robomimic(out, [episode], SPEC)
    with h5py.File(out, "r") as f:
        frames = f["data/demo_0/obs/agentview_image"]
        assert frames.shape == (6, 84, 84, 3) and frames.dtype == np.uint8 and frames.compression == "gzip"
        assert "data/demo_0/next_obs/robot0_eye_in_hand_image" in f
    (back,) = read_robomimic(out, SPEC)
    assert np.array_equal(back.images, episode.images)
    assert np.array_equal(back.observations, episode.observations)
    with h5py.File(out, "a") as f:
        del f["data/demo_0/obs/agentview_image"]
    with pytest.raises(BorlError, match="agentview_image"):
        read_robomimic(out, SPEC)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("image") / "run"
    assert main(["run", "lift-image", *QUICK_IMAGE_RUN, "--out", str(run)]) == 0
    return run


def test_a_quick_lift_image_run_trains_collects_and_evaluates(image_run):
    with open(image_run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [0, 1]
    assert int(rows[1]["rollouts"]) == 2
    (rollout,) = EpisodeStore(image_run / "data").load(1)[:1]
    assert rollout.images.shape[1:] == (2, 84, 84, 3)
    agent = Agent.load(image_run / "checkpoints" / "iter_001")
    assert agent.observation == SPEC.observation
    packed = SPEC.observation.pack(rollout.observations[:2], rollout.images[:2])
    actions = agent.act(packed, [torch.Generator().manual_seed(i) for i in range(2)])
    assert actions.shape == (2, 7) and np.all(np.isfinite(actions))


def test_the_image_agent_drives_the_sim_robot_and_the_recording_keeps_its_pictures(image_run, tmp_path):
    robot = SimRobot("lift-image", horizon=4)
    picture = robot.reset()["agentview_image"]
    assert picture.shape == (84, 84, 3) and picture.dtype == np.uint8
    out = tmp_path / "recording.hdf5"
    recorder = EpisodeRecorder(out, "lift-image", "sim:lift-image")
    report = drive(robot, LocalPolicy(image_run), episodes=1, recorder=recorder, rate_hz=0)
    robot.close()
    assert report.steps == [4]
    (recorded,) = read_robomimic(out, SPEC)
    assert recorded.images.shape == (5, 2, 84, 84, 3) and len(recorded) == 4
    with pytest.raises(BorlError, match="uint8"):
        robot.spec.flatten({**robot.spec.split(np.zeros(robot.spec.obs_dim)), "agentview_image": np.zeros(3)})


def image_config(algo: str = "recipe", **overrides) -> RunConfig:
    """lift-image at the quick sizes under preset `algo`, with `overrides` (nested mappings) on top."""
    return build_config(algo, True, {"task": "lift-image"}, overrides)


def some_normalizer(obs_dim: int, act_dim: int) -> Normalizer:
    rng = np.random.default_rng(0)
    return Normalizer.fit(rng.normal(size=(50, obs_dim)), rng.uniform(-1, 1, (50, act_dim)))


def image_agent(config: RunConfig) -> Agent:
    torch.manual_seed(0)
    normalizer = some_normalizer(SPEC.obs_dim, SPEC.act_dim)
    return Agent(config, SPEC.obs_dim, SPEC.act_dim, normalizer, observation=SPEC.observation)


def network_batch(rows: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Network-layout transitions whose reward is whether the agentview picture is bright on the
    left: a value that only the pictures tell."""
    pictures = torch.randint(0, 256, (rows, 2, 3, 76, 76), generator=generator).float()
    bright = torch.rand(rows, generator=generator) < 0.5
    pictures[bright, 0, :, :, :38] = 255.0
    low = torch.randn(rows, 9, generator=generator)
    obs = torch.cat([low, pictures.reshape(rows, -1)], dim=1)
    return {
        "obs": obs,
        "next_obs": obs,
        "actions": torch.rand(rows, 7, generator=generator) * 2 - 1,
        "rewards": bright.float(),
        "terminals": torch.ones(rows),
        "returns": bright.float(),
    }


def test_a_critic_sharing_the_policy_encoder_reads_it_frozen_and_learns_through_it():
    config = image_config(critic={"share_encoder": True})
    agent = image_agent(config)
    critic = agent.critic
    assert critic.encoder is agent.encoder is agent.policy.model.encoder
    critic_params = {id(p) for group in critic.optimizer.param_groups for p in group["params"]}
    assert not critic_params & {id(p) for p in agent.encoder.parameters()}
    assert "encoder" not in critic.state_dict()
    own = image_agent(image_config()).critic
    assert critic.update_flops_per_row() < own.update_flops_per_row()

    batch = network_batch(64, torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in agent.encoder.parameters()]
    losses = [float(critic.update(batch)["q_loss"]) for _ in range(40)]
    assert all(torch.equal(a, b) for a, b in zip(before, agent.encoder.parameters(), strict=True))
    assert losses[-1] < 0.5 * losses[0]
    obs, actions = batch["obs"][:5], batch["actions"][:5]
    assert critic.q(obs, actions).shape == (5,) and critic.v(obs).shape == (5,)
    assert critic.q(obs, torch.rand(5, 3, 7)).shape == (5, 3)
    # the policy's training moves the encoder the critic reads
    q_before = critic.q(obs, actions)
    agent.policy.update(batch)
    assert not torch.equal(critic.q(obs, actions), q_before)


def test_a_shared_encoder_checkpoint_rebuilds_the_same_agent(tmp_path):
    agent = image_agent(image_config(critic={"share_encoder": True}))
    batch = network_batch(16, torch.Generator().manual_seed(1))
    agent.policy.update(batch)
    agent.critic.update(batch)
    agent.save(tmp_path / "ckpt")
    loaded = Agent.load(tmp_path / "ckpt")
    assert loaded.critic.encoder is loaded.encoder is loaded.policy.model.encoder
    obs, actions = batch["obs"][:4], batch["actions"][:4]
    assert torch.equal(loaded.critic.q(obs, actions), agent.critic.q(obs, actions))
    packed = SPEC.observation.pack(np.zeros((2, 9), np.float32), np.full((2, 2, 84, 84, 3), 90, np.uint8))
    seeds = [torch.Generator().manual_seed(i) for i in range(2)]
    again = [torch.Generator().manual_seed(i) for i in range(2)]
    assert np.array_equal(loaded.act(packed, seeds), agent.act(packed, again))


def test_training_with_a_shared_encoder_runs_the_policy_first_and_steering_shares_the_frozen_one(
    image_episode,
):
    config = image_config(
        critic={"share_encoder": True}, train={"threads": 2, "policy_steps": 3, "critic_steps": 3}
    )
    assert not overlaps(config) and overlaps(image_config(train={"threads": 2}))
    agent, info = train_agent(
        config, [image_episode], SPEC.obs_dim, SPEC.act_dim, 0, observation=SPEC.observation
    )
    assert agent.critic.encoder is agent.encoder is agent.policy.model.encoder
    assert np.isfinite(info["critic/q_loss"]) and agent.policy.step == 3
    steering = image_config(algo="steering", critic={"share_encoder": True}, train={"critic_steps": 2})
    steered, _ = train_agent(
        steering, [image_episode], SPEC.obs_dim, SPEC.act_dim, 1, frozen=agent, observation=SPEC.observation
    )
    assert steered.policy is agent.policy and steered.critic.encoder is agent.encoder


def test_sharing_the_encoder_is_refused_where_it_cannot_apply(tmp_path, capsys):
    with pytest.raises(BorlError, match="critic.share_encoder cannot take extraction awr"):
        build_config("awr", True, {"task": "lift-image", "critic": {"share_encoder": True}})
    low_dim = build_config("recipe", True, {"critic": {"share_encoder": True}})
    with pytest.raises(BorlError, match="critic.share_encoder needs an image task: lift has no cameras"):
        Agent(low_dim, 3, 2, some_normalizer(3, 2))
    # a run says so before it makes D0
    assert (
        main(
            [
                "run",
                "lift",
                "--quick",
                "--quiet",
                "--set",
                "critic.share_encoder=true",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "critic.share_encoder needs an image task" in capsys.readouterr().err
    assert not (tmp_path / "r" / "data" / "iter_000" / "COMPLETE").exists()
    # no critic, nothing to share: the setting is ignored
    assert image_agent(image_config(algo="il", critic={"share_encoder": True})).critic is None
