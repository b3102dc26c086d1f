"""The Lift task on real robosuite: interface, seeding, scripted expert, demo collection."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from borl.envs import get_task, list_tasks
from borl.errors import BorlError
from borl.pool import open_pool
from borl.rollout.demos import DemoWork, collect_demos

TASK = get_task("lift")


def _rollout(env, seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    observations, states = [env.reset(seed)], []
    for action in actions:
        states.append(env.sim_state())
        observations.append(env.step(action)[0])
    return np.stack(observations), np.stack(states)


def test_registry() -> None:
    assert list_tasks()[0] is TASK
    s = TASK.spec
    assert (s.obs_dim, s.act_dim, s.horizon, s.demo_noise, s.env_name) == (19, 7, 400, 0.15, "Lift")
    known = r"\(known: lift, lift-image, can, square, stack, threading, pen\)"
    with pytest.raises(BorlError, match=rf"unknown task 'x' {known}"):
        get_task("x")


def test_reset_and_step_shapes(env) -> None:
    obs = env.reset(0)
    assert obs.shape == (19,) and obs.dtype == np.float32
    assert env.sim_state().shape == (32,)
    obs, reward, terminated, truncated, info = env.step(np.zeros(7))
    assert obs.shape == (19,) and obs.dtype == np.float32
    assert reward == 0.0 and terminated is False and truncated is False
    assert info == {"success": False}
    # the flat observation concatenates robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos, object
    raw = env.observation_dict()
    np.testing.assert_array_equal(obs[:3], raw["robot0_eef_pos"].astype(np.float32))
    np.testing.assert_array_equal(obs[9:], raw["object-state"].astype(np.float32))


def test_same_seed_same_episode_whatever_came_before(env) -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, size=(15, 7))
    first_obs, first_states = _rollout(env, 7, actions)
    _rollout(env, 8, actions[::-1])  # something else in between
    again_obs, again_states = _rollout(env, 7, actions)
    np.testing.assert_array_equal(first_obs, again_obs)
    np.testing.assert_array_equal(first_states, again_states)
    assert not np.array_equal(env.reset(8), first_obs[0])

    other = TASK.make_env()  # a second environment builds the same scene
    try:
        np.testing.assert_array_equal(_rollout(other, 7, actions)[0], first_obs)
    finally:
        other.close()


def test_non_finite_or_misshapen_action_is_rejected(env) -> None:
    env.reset(0)
    for bad in ([np.nan] + [0.0] * 6, [0.0] * 6 + [np.inf]):
        with pytest.raises(BorlError, match="non-finite action"):
            env.step(np.array(bad))
    with pytest.raises(BorlError, match=r"shape \(7,\)"):
        env.step(np.zeros(6))


def test_truncation_at_horizon_and_no_step_after_end() -> None:
    env = TASK.make_env(horizon=3)
    try:
        env.reset(0)
        results = [env.step(np.zeros(7))[1:4] for _ in range(3)]
        assert results == [(0.0, False, False), (0.0, False, False), (0.0, False, True)]
        with pytest.raises(BorlError, match="reset"):
            env.step(np.zeros(7))
    finally:
        env.close()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expert_lifts_the_cube_with_noise(env, seed: int) -> None:
    expert = TASK.make_expert(env, np.random.default_rng(seed), noise=0.15)
    obs = env.reset(seed)
    rewards = []
    terminated = truncated = False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(expert.act(obs))
        rewards.append(reward)
    assert info["success"] and terminated and not truncated
    assert rewards[-1] == 1.0 and sum(rewards) == 1.0
    assert len(rewards) < 100


def test_collect_demos_records_lineage_and_is_reproducible() -> None:
    demos, attempts = collect_demos(TASK, 2, seed=5)
    assert attempts >= 2 and len(demos) == 2
    for index, demo in enumerate(demos):
        assert demo.success and demo.terminated and demo.rewards[-1] == 1.0
        assert demo.lineage.source == "demo" and demo.lineage.iteration == 0 and demo.lineage.index == index
        assert demo.lineage.noise == TASK.spec.demo_noise and demo.lineage.seed is not None
        assert demo.states.shape == (len(demo), 32) and demo.observations.shape == (len(demo) + 1, 19)
    assert demos[0].lineage.seed != demos[1].lineage.seed
    again, _ = collect_demos(TASK, 1, seed=5)
    np.testing.assert_array_equal(again[0].actions, demos[0].actions)
    with pytest.raises(BorlError, match="at least 1"):
        collect_demos(TASK, 0, seed=5)


def test_parallel_demos_equal_serial_demos_failed_attempts_included() -> None:
    # At a 28-step horizon most lift attempts run out of time, so successes come out of order.
    serial, serial_attempts = collect_demos(TASK, 2, seed=5, horizon=28)
    parallel, parallel_attempts = collect_demos(TASK, 2, seed=5, horizon=28, workers=2)
    assert parallel_attempts == serial_attempts > 2
    for one, other in zip(serial, parallel, strict=True):
        assert one.lineage == other.lineage
        np.testing.assert_array_equal(one.actions, other.actions)
        np.testing.assert_array_equal(one.states, other.states)
    with pytest.raises(BorlError, match="workers must be at least 1"):
        collect_demos(TASK, 1, seed=5, workers=0)


def test_ray_demos_equal_serial_demos() -> None:
    pytest.importorskip("ray", reason="Ray is installed by scripts/setup.sh")
    serial, serial_attempts = collect_demos(TASK, 2, seed=5, horizon=28)
    on_ray, ray_attempts = collect_demos(TASK, 2, seed=5, horizon=28, workers=2, backend="ray")
    assert ray_attempts == serial_attempts
    for one, other in zip(serial, on_ray, strict=True):
        assert one.lineage == other.lineage
        np.testing.assert_array_equal(one.actions, other.actions)
        np.testing.assert_array_equal(one.states, other.states)
    with (
        pytest.raises(BorlError, match="Ray demonstration failed: .*unknown task 'nope'"),
        open_pool(partial(DemoWork, "nope", None), 1, "demonstration", "ray") as pool,
    ):
        pool.run((5, 0.0), [0], lambda episode: None)
    with pytest.raises(BorlError, match="unknown backend 'dask'"):
        collect_demos(TASK, 1, seed=5, backend="dask")
