"""The Adroit pen task: interface, seeding, D4RL's success rule."""

from __future__ import annotations

import numpy as np
import pytest

from borl.envs import get_task
from borl.envs.pen import goal_achieved_from_obs, success_step
from borl.errors import BorlError

TASK = get_task("pen")
# Zero actions from these seeds hold the goal on 21 steps (success on step 31) and on exactly 20 (failure).
SUCCESS_SEED, TWENTY_SEED = 8, 105


@pytest.fixture(scope="module")
def env():
    env = TASK.make_env()
    yield env
    env.close()


def _rollout(env, seed: int, actions: np.ndarray) -> tuple[np.ndarray, list, list]:
    observations, steps, states = [env.reset(seed)], [], []
    for action in actions:
        states.append(env.sim_state())
        obs, *rest = env.step(action)
        observations.append(obs)
        steps.append(rest)
        if rest[1] or rest[2]:
            break
    return np.stack(observations), steps, states


def test_spec() -> None:
    s = TASK.spec
    assert (s.obs_dim, s.act_dim, s.horizon, s.env_name) == (45, 24, 100, "AdroitHandPen-v1")
    assert not TASK.has_expert
    with pytest.raises(BorlError, match="no pen expert exists yet: .*--dataset PATH"):
        TASK.require_expert()


def test_reset_and_step_shapes(env) -> None:
    obs = env.reset(0)
    assert obs.shape == (45,) and obs.dtype == np.float32
    assert env.sim_state().shape == (64,)
    obs, reward, terminated, truncated, info = env.step(np.zeros(24, dtype=np.float32))
    assert obs.shape == (45,) and obs.dtype == np.float32
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info == {"success": False, "goal_achieved": False}
    with pytest.raises(BorlError, match=r"must have shape \(24,\), got \(7,\)"):
        env.step(np.zeros(7))
    with pytest.raises(BorlError, match="non-finite action"):
        env.step(np.full(24, np.nan))


def test_same_seed_same_episode_whatever_came_before(env) -> None:
    actions = np.random.default_rng(0).uniform(-0.3, 0.3, size=(15, 24))
    first_obs, _, first_states = _rollout(env, 7, actions)
    _rollout(env, 8, actions[::-1])
    again_obs, _, again_states = _rollout(env, 7, actions)
    np.testing.assert_array_equal(first_obs, again_obs)
    np.testing.assert_array_equal(first_states, again_states)
    assert not np.array_equal(env.reset(8)[36:39], first_obs[0, 36:39])  # the target orientation


def test_success_after_more_than_twenty_goal_steps(env) -> None:
    obs, steps, _ = _rollout(env, SUCCESS_SEED, np.zeros((100, 24)))
    goals = [info["goal_achieved"] for *_, info in steps]
    assert sum(goals) == 21 and len(steps) == 31
    assert [reward for reward, *_ in steps] == [0.0] * 30 + [1.0]
    assert steps[-1][1:] == [True, False, {"success": True, "goal_achieved": True}]
    np.testing.assert_array_equal(goal_achieved_from_obs(obs[1:]), goals)


def test_twenty_goal_steps_is_a_failure(env) -> None:
    obs, steps, _ = _rollout(env, TWENTY_SEED, np.zeros((100, 24)))
    goals = [info["goal_achieved"] for *_, info in steps]
    assert sum(goals) == 20 and len(steps) == 100
    assert all(reward == 0.0 for reward, *_ in steps)
    assert steps[-1][1:3] == [False, True] and not steps[-1][3]["success"]
    np.testing.assert_array_equal(goal_achieved_from_obs(obs[1:]), goals)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([True] * 20, None),
        ([True] * 21, 20),
        ([False] * 5 + [True] * 21 + [False] * 4, 25),
        ([True] * 10 + [False] * 30 + [True] * 10, None),  # interrupted, 20 in all
        ([True] * 10 + [False] * 30 + [True] * 11 + [False], 50),  # interrupted, 21 in all
        ([True, False] * 30, 40),  # the 21st goal step is step 40
        ([], None),
    ],
)
def test_d4rl_success_rule(flags: list[bool], expected: int | None) -> None:
    assert success_step(np.array(flags, dtype=bool)) == expected
