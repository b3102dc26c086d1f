"""The pen expert: it succeeds under D4RL's rule, replays its search exactly, and makes demonstrations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from borl.cli import main
from borl.data.robomimic import read_robomimic
from borl.envs import get_task
from borl.envs.demos import expert_rng
from borl.envs.pen_expert import PenPlanner, PlannerConfig

TASK = get_task("pen")


# With the generator `borl demos` gives it, the expert succeeds on seed 1 in one pass and on seed 3 after
# backing up once (its search takes 83 planning steps for a 63-step episode).
@pytest.mark.parametrize("seed", [1, 3])
def test_expert_succeeds_from_one_search(env, seed: int) -> None:
    obs = env.reset(seed)
    expert = TASK.make_expert(env, expert_rng(seed), 0.0)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        done = terminated or truncated
    assert info["success"] and expert.found and expert.planned_from == 0
    assert (expert.search_steps > env.episode_steps) == (seed == 3)  # backed up or not


def test_expert_searches_again_when_the_state_differs(env) -> None:
    small = PlannerConfig(samples=4, horizon=3, knots=2, budget=5)
    obs = env.reset(5)
    expert = PenPlanner(env, np.random.default_rng(0), 0.0, small)
    obs = env.step(expert.act(obs))[0]
    assert expert.planned_from == 0
    env.step(np.ones(24, dtype=np.float32))
    expert.act(obs)
    assert expert.planned_from == 2


def test_demos_cli_writes_pen_demonstrations(tmp_path: Path, capsys) -> None:
    path = tmp_path / "pen.hdf5"
    assert main(["demos", "pen", "--episodes", "1", "--seed", "0", "--out", str(path)]) == 0
    assert "wrote 1 successful demonstrations" in capsys.readouterr().out
    (demo,) = read_robomimic(path, TASK.spec)
    steps = len(demo)
    assert demo.success and demo.terminated and demo.lineage.noise == TASK.spec.demo_noise
    assert demo.observations.shape == (steps + 1, 45) and demo.actions.shape == (steps, 24)
    assert demo.rewards[-1] == 1.0 and demo.rewards[:-1].sum() == 0.0
