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
from borl.config import QUICK, merge
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
