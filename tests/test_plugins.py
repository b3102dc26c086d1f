"""A new policy class and a new critic objective are each one file and one registry line: the toys of
tests/toy_policy.py and tests/toy_critic.py meet the contracts and run the loop on real Lift."""

import pytest
from test_contracts import test_every_registered_critic_meets_the_contract as critic_contract
from test_contracts import test_every_registered_policy_meets_the_contract as policy_contract
from toy_critic import HuberCritic
from toy_policy import RegressionPolicy

from borl.agent import Agent
from borl.cli import main
from borl.critics import CRITICS
from borl.policies import POLICIES


@pytest.fixture
def toys(monkeypatch):
    # The registry lines, as they would be written in borl/policies/__init__.py and
    # borl/critics/__init__.py.
    monkeypatch.setitem(POLICIES, "regression", RegressionPolicy)
    monkeypatch.setitem(CRITICS, "huber", HuberCritic)


def test_the_toys_meet_the_contracts(toys, one_thread):
    policy_contract("regression")
    critic_contract("huber")


def test_the_toys_run_the_loop(toys, tmp_path, capsys):
    out = tmp_path / "run"
    # One worker: its thread sees this process's registries (spawned workers would import borl anew).
    args = ["run", "lift", "--quick", "--quiet", "--workers", "1", "--policy-class", "regression"]
    assert main([*args, "--critic.kind", "huber", "--out", str(out)]) == 0
    agent = Agent.load(out / "checkpoints" / "iter_001")
    assert isinstance(agent.policy, RegressionPolicy) and isinstance(agent.critic, HuberCritic)
    assert main(["run", "lift", "--quick", "--policy-class", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown policy class 'nope' (known: diffusion, gaussian, regression)" in capsys.readouterr().err
