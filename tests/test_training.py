"""The one training loop across the algorithm axis: filtered IL, AWR weights, steering's frozen policy."""

import time

import numpy as np
import pytest
import torch
from tqdm import tqdm

from borl.agent import Agent
from borl.algos import ALGORITHMS
from borl.config import build_config
from borl.data.episode import Episode, Lineage
from borl.data.normalization import Normalizer
from borl.data.replay import TransitionDataset
from borl.errors import BorlError
from borl.train import Phase, TrainingProgress, run_phases, train_agent

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {
    "train": {"policy_steps": 300, "critic_steps": 20, "batch_size": 64, "threads": 1},
    "gaussian": {"lr": 3e-3, "dropout": 0.0},
}


def episode(action: float, success: bool, source: str = "rollout", index: int = 0) -> Episode:
    """Ten steps of a constant action from a constant observation; rewarded and terminal at the end
    when successful."""
    rewards = np.zeros(10, np.float32)
    rewards[-1] = float(success)
    return Episode(
        observations=np.zeros((11, 2), np.float32),
        actions=np.full((10, 1), action, np.float32),
        rewards=rewards,
        terminated=success,
        success=success,
        lineage=Lineage(source, 0 if source == "demo" else 1, index),
    )


def mixed_episodes() -> list[Episode]:
    """One demonstration and two successes acting +0.8; four failures acting -0.8."""
    return [
        episode(0.8, True, "demo"),
        *(episode(0.8, True, index=i) for i in range(2)),
        *(episode(-0.8, False, index=i) for i in range(2, 6)),
    ]


def test_filtered_il_imitates_only_successful_episodes_and_demos():
    episodes = [*mixed_episodes(), episode(0.8, False, "demo", index=9)]
    mask = ALGORITHMS["filtered_il"].policy_episode_mask(episodes)
    assert mask.tolist() == [True, True, True, False, False, False, False, True]
    assert ALGORITHMS["filtered_value"].policy_episode_mask(episodes).tolist() == mask.tolist()
    assert ALGORITHMS["il"].policy_episode_mask(episodes).all()
    assert ALGORITHMS["value"].policy_episode_mask(episodes).all()
    data = TransitionDataset(episodes, Normalizer.fit(np.zeros((2, 2)), np.array([[-0.8], [0.8]])))
    picked = data.tensors["actions"][data.subset(mask)]
    assert len(picked) == 40 and torch.all(picked == 1.0)


def test_keep_fastest_imitates_the_demonstrations_and_the_shortest_successes():
    """Successes of 10, 4, 7 and 4 steps: keeping half keeps the two of 4 (the earlier first at a tie),
    keeping 0.6 rounds up to three; the demonstration stays however long it is."""

    def timed(steps: int, success: bool, source: str = "rollout", index: int = 0) -> Episode:
        long = episode(0.8, success, source, index)
        return Episode(
            observations=long.observations[: steps + 1],
            actions=long.actions[:steps],
            rewards=long.rewards[-steps:],
            terminated=success,
            success=success,
            lineage=long.lineage,
        )

    episodes = [
        timed(10, True, "demo"),
        timed(10, True, index=1),
        timed(4, True, index=2),
        timed(3, False, index=3),
        timed(7, True, index=4),
        timed(4, True, index=5),
    ]
    filtered = ALGORITHMS["filtered_il"]
    assert filtered.policy_episode_mask(episodes, 0.5).tolist() == [True, False, True, False, False, True]
    assert filtered.policy_episode_mask(episodes, 0.6).tolist() == [True, False, True, False, True, True]
    assert filtered.policy_episode_mask(episodes, 1.0).tolist() == [True, True, True, False, True, True]


@pytest.mark.parametrize(
    ("algo", "expected"), [("filtered-il", 1.0), ("filtered-recipe", 1.0), ("il", -0.14), ("recipe", -0.14)]
)
def test_trained_policy_follows_its_training_set(algo, expected, device):
    config = build_config(algo, True, {"policy_class": "gaussian", "device": device, **TINY})
    agent, _ = train_agent(config, mixed_episodes(), 2, 1, seed=0)
    assert (agent.critic is not None) == algo.endswith("recipe")
    mean, _ = agent.policy.distribution(torch.zeros(64, 2, device=device))
    # Normalised actions: +0.8 is 1.0; il's data hold 3 of +1 and 4 of -1, mean -1/7.
    assert abs(mean.mean().item() - expected) < 0.15


def test_a_demo_share_draws_that_share_of_each_policy_batch_from_the_demonstrations(device):
    overrides = {"policy_class": "gaussian", "device": device, **TINY}
    config = build_config("il", True, {**overrides, "train": {**TINY["train"], "demo_share": 0.5}})
    agent, _ = train_agent(config, mixed_episodes(), 2, 1, seed=0)
    mean, _ = agent.policy.distribution(torch.zeros(64, 2, device=device))
    # Half of each batch is the demonstration's +1; the rest 2 of +1 and 4 of -1: 0.5 - 1/6 = 1/3.
    assert abs(mean.mean().item() - 1 / 3) < 0.15


def test_a_demo_share_without_demonstrations_is_refused():
    config = build_config(
        "il", True, {"policy_class": "gaussian", "train": {**TINY["train"], "demo_share": 0.5}}
    )
    with pytest.raises(BorlError, match="demo_share needs demonstrations"):
        train_agent(config, mixed_episodes()[1:], 2, 1, seed=0)


@pytest.mark.parametrize(
    "epochs, policy_epochs, critic_steps, policy_steps", [(0, None, 5, 5), (4, None, 28, 12), (4, 10, 28, 30)]
)
def test_epochs_raise_each_networks_steps_with_its_own_data(
    epochs, policy_epochs, critic_steps, policy_steps
):
    """With train.epochs the critic passes that often over all 70 transitions and filtered
    imitation's policy over its 30 (the demonstration and two successes), batches of 10:
    ceil(4 * 70 / 10) and ceil(4 * 30 / 10) updates; without it, the set 5 each. train.policy_epochs
    sets the policy's own floor: ceil(10 * 30 / 10)."""
    train = {
        **TINY["train"],
        "policy_steps": 5,
        "critic_steps": 5,
        "batch_size": 10,
        "epochs": epochs,
        "policy_epochs": policy_epochs,
    }
    config = build_config("filtered-recipe", True, {**TINY, "policy_class": "gaussian", "train": train})
    curves: list[dict] = []
    train_agent(config, mixed_episodes(), 2, 1, seed=0, curves=curves)
    last_step = {row["phase"]: row["step"] for row in curves}
    assert last_step == {"critic": critic_steps - 1, "policy": policy_steps - 1}


def test_an_agent_trained_on_a_device_acts_the_same_from_its_checkpoint_on_the_cpu(device, tmp_path):
    """Training may run on a GPU while collection workers load its checkpoint on the CPU."""
    config = build_config("recipe", True, {"device": device, **TINY})
    agent, _ = train_agent(config, mixed_episodes(), 2, 1, seed=0)
    agent.save(tmp_path / "agent")
    loaded = Agent.load(tmp_path / "agent", config)
    assert next(loaded.policy.model.parameters()).device.type == "cpu"
    obs = np.array([[0.0, 0.0], [0.5, -0.5], [-1.0, 1.0]], np.float32)

    def act(acting: Agent) -> np.ndarray:
        return acting.act(obs, [torch.Generator().manual_seed(i) for i in range(3)], extract=False)

    np.testing.assert_allclose(act(loaded), act(agent), atol=1e-5)
    actions = torch.linspace(-1, 1, 3)[:, None]
    q_loaded = loaded.critic.q(torch.from_numpy(obs), actions)
    q_trained = agent.critic.q(torch.from_numpy(obs).to(device), actions.to(device)).cpu()
    torch.testing.assert_close(q_loaded, q_trained, atol=1e-5, rtol=1e-5)


def test_awr_trains_the_critic_first_and_weights_the_policy():
    config = build_config("gaussian-awr", True, TINY)
    agent, info = train_agent(config, mixed_episodes(), 2, 1, seed=0)
    assert agent.critic is not None and info["policy/awr_weight"] > 0
    assert "critic/q_loss" in info


def test_steering_trains_the_policy_once():
    assert [ALGORITHMS["steering"].policy_iteration(i) for i in range(3)] == [0, 0, 0]
    assert [ALGORITHMS["value"].policy_iteration(i) for i in range(3)] == [0, 1, 2]
    config = build_config("steering", True, TINY)
    first, _ = train_agent(config, mixed_episodes()[:1], 2, 1, seed=0)
    before = {k: v.clone() for k, v in first.policy.model.state_dict().items()}
    critic_before = {k: v.clone() for k, v in first.critic.q_net.state_dict().items()}
    second, info = train_agent(config, mixed_episodes(), 2, 1, seed=1, frozen=first)
    assert not any(key.startswith("policy/") for key in info)
    assert second.normalizer is first.normalizer
    for key, value in second.policy.model.state_dict().items():
        assert torch.equal(value, before[key])
    assert any(not torch.equal(v, critic_before[k]) for k, v in second.critic.q_net.state_dict().items())


def _phases_and_agent(overlap: bool) -> tuple:
    """Train a fresh recipe agent (same initial weights each call) for a few critic and policy steps."""
    config = build_config("recipe", True)
    episodes = mixed_episodes()
    normalizer = Normalizer.fit(np.zeros((2, 2)), np.array([[-0.8], [0.8]]))
    torch.manual_seed(0)
    agent = Agent(config, 2, 1, normalizer)
    data = TransitionDataset(episodes, normalizer)
    generators = [torch.Generator().manual_seed(i) for i in range(2)]
    phases = [
        Phase("critic", 40, agent.critic.update, generators[0], 1.0),
        Phase("policy", 25, agent.policy.update, generators[1], 1.0),
    ]
    with tqdm(disable=True) as bar:
        run_phases(phases, data, 16, threads=1, overlap=overlap, progress=TrainingProgress(bar))
    return agent


def test_overlapped_training_equals_training_one_phase_after_the_other():
    overlapped, sequential = _phases_and_agent(True), _phases_and_agent(False)
    for a, b in [
        (overlapped.critic.q_net, sequential.critic.q_net),
        (overlapped.critic.v_net, sequential.critic.v_net),
        (overlapped.policy.model, sequential.policy.model),
        (overlapped.policy.ema, sequential.policy.ema),
    ]:
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(x, y), name


def _counting(calls: list[int], fail_at: int | None = None):
    def update(batch: dict) -> dict:
        time.sleep(0.002)  # 500 calls take a second: long enough for the other thread to fail first
        calls.append(1)
        if len(calls) == fail_at:
            raise ValueError("boom")
        return {}

    return update


@pytest.mark.parametrize("failing", ["first", "second"])
def test_a_failure_on_either_training_thread_stops_both(failing):
    first_calls, second_calls = [], []
    data = TransitionDataset(mixed_episodes(), Normalizer.fit(np.zeros((2, 2)), np.zeros((2, 1))))
    phases = [
        Phase(
            "critic", 500, _counting(first_calls, 3 if failing == "first" else None), torch.Generator(), 1.0
        ),
        Phase(
            "policy", 500, _counting(second_calls, 3 if failing == "second" else None), torch.Generator(), 1.0
        ),
    ]
    with tqdm(disable=True) as bar, pytest.raises(ValueError, match="boom"):
        run_phases(phases, data, 4, threads=2, overlap=True, progress=TrainingProgress(bar))
    assert len(first_calls) < 500 and len(second_calls) < 500


def test_the_first_candidate_is_the_policys_own_sample():
    """Safe selection that never trusts the critic acts exactly as the policy alone does with the same
    generators, and selection statistics then report no move."""
    from borl.errors import BorlError

    config = build_config("recipe", True, {**TINY, "extraction": {"safety_k": 1e9}})
    agent, _ = train_agent(config, mixed_episodes(), 2, 1, seed=0)
    obs = np.array([[0.0, 0.0], [0.5, -0.5], [-1.0, 1.0]], np.float32)

    def act(extract: bool) -> np.ndarray:
        return agent.act(obs, [torch.Generator().manual_seed(i) for i in range(3)], extract=extract)

    np.testing.assert_array_equal(act(True), act(False))
    stats = agent.selection_stats(np.repeat(obs, 20, axis=0), seed=0)
    assert stats["moved_from_first"] == 0.0 and stats["q_margin"] == 0.0
    agent.config.extraction.safety_k = None
    moved = agent.selection_stats(np.repeat(obs, 20, axis=0), seed=0)
    assert moved["moved_from_first"] > 0.5 and moved["q_margin"] >= 0.0
    with pytest.raises(BorlError, match="num_critics"):
        build_config("recipe", True, {"critic": {"num_critics": 1}, "extraction": {"safety_k": 1.0}})
    with pytest.raises(BorlError, match="temperature"):
        build_config("recipe", True, {"extraction": {"safety_k": 1.0, "temperature": 0.1}})
