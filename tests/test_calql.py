"""Cal-QL's conservative term on the collecting policy's samples."""

from pathlib import Path

import pytest
import torch
from test_training import TINY, mixed_episodes

from borl.agent import Agent
from borl.cli import main
from borl.config import build_config
from borl.critics import CRITICS, CalQLCritic, IQLConfig, IQLCritic
from borl.errors import BorlError
from borl.train import train_agent

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = IQLConfig(hidden=64, tau=0.05, lr=1e-3, q_clip=None, kind="calql", policy_samples=2)


def two_state_batch(samples: bool = True) -> dict[str, torch.Tensor]:
    """State 0 fails (reward 0), state 1 succeeds (reward 1), each with dataset action 0; the
    collecting policy proposed +0.9 in both."""
    obs = torch.eye(2).repeat(32, 1)
    batch = {
        "obs": obs,
        "actions": torch.zeros(64, 1),
        "rewards": obs[:, 1].clone(),
        "next_obs": obs,
        "terminals": torch.ones(64),
        "returns": obs[:, 1].clone(),
    }
    if samples:
        batch["policy_actions"] = torch.full((64, 2, 1), 0.9)
    return batch


def trained(kind: type, batch: dict[str, torch.Tensor], steps: int = 1500) -> IQLCritic:
    torch.manual_seed(0)
    critic = kind(2, 1, CONFIG)
    for _ in range(steps):
        critic.update(batch)
    return critic


def test_without_policy_samples_calql_is_iql():
    batch = two_state_batch(samples=False)
    iql, calql = trained(IQLCritic, batch, 50), trained(CalQLCritic, batch, 50)
    obs = torch.eye(2)
    for action in (torch.zeros(2, 1), torch.full((2, 1), 0.9)):
        assert torch.equal(iql.q(obs, action), calql.q(obs, action))


def test_the_penalty_ranks_the_sampled_action_below_the_data_action():
    batch = two_state_batch()
    obs, data, sampled = torch.eye(2), torch.zeros(2, 1), torch.full((2, 1), 0.9)

    def margin(critic: IQLCritic) -> torch.Tensor:
        return critic.q(obs, data, use_target=False) - critic.q(obs, sampled, use_target=False)

    iql, calql = trained(IQLCritic, batch), trained(CalQLCritic, batch)
    assert torch.all(margin(calql) > margin(iql) + 0.15), (margin(iql), margin(calql))
    # The data actions' values move by conservative / 2 at most (0.05), not more.
    assert torch.allclose(calql.q(obs, data, use_target=False), torch.tensor([0.0, 1.0]), atol=0.06)


def test_training_draws_the_samples_from_the_agent_that_collected():
    config = build_config("recipe", True, {"policy_class": "gaussian", "critic": {"kind": "calql"}, **TINY})
    collector, _ = train_agent(config, mixed_episodes(), 2, 1, seed=0)
    _, alone = train_agent(config, mixed_episodes(), 2, 1, seed=0)
    _, sampled = train_agent(config, mixed_episodes(), 2, 1, seed=0, proposer=collector)
    assert "critic/conservative_gap" not in alone and "critic/conservative_gap" in sampled


def test_an_unknown_critic_is_one_line():
    with pytest.raises(BorlError, match="unknown critic.kind 'cql' .known: iql, calql"):
        build_config("recipe", True, {"critic": {"kind": "cql"}})


@pytest.mark.parametrize("kind", ["calql", "hlgauss"])
def test_a_run_with_each_other_critic(tmp_path: Path, kind: str):
    demos = tmp_path / "demos.hdf5"
    assert main(["demos", "lift", "--episodes", "3", "--out", str(demos)]) == 0
    out = tmp_path / "run"
    args = ["run", "lift", "--quick", "--quiet", "--dataset", str(demos), "--out", str(out)]
    assert main([*args, "--set", f"critic.kind={kind}"]) == 0
    assert (out / "checkpoints" / "iter_001").is_dir()
    # The checkpoint rebuilds the same critic by itself.
    assert type(Agent.load(out / "checkpoints" / "iter_001").critic) is CRITICS[kind]
