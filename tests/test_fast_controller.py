"""borl's compiled controller (borl/envs/fast_osc.py) against robosuite's own step, on real robosuite:
the same simulator states and observations, bit for bit, at every step of random actions and of full
demonstration episodes on every robosuite task.

The kernel makes robosuite's floating-point operations in robosuite's order: the same MuJoCo functions,
robosuite's own jitted `opspace_matrices`, `orientation_error` and `nullspace_torques` on arrays of the
same memory layout (a Fortran-ordered mass matrix changes which way BLAS sums, and so the last bit),
and elementwise steps as robosuite writes them. So equality is exact; any difference is a bug.
"""

from __future__ import annotations

import numpy as np
import pytest

from borl.envs.demos import make_attempt
from borl.envs.registry import get_task

ROBOSUITE_TASKS = ("lift", "can", "square", "stack", "threading")


@pytest.fixture(scope="module", params=ROBOSUITE_TASKS)
def pair(request):
    """The task and two environments of it: robosuite's own step and the fast one."""
    task = get_task(request.param)
    envs = task.make_env(fast_controller=False), task.make_env(fast_controller=True)
    yield task, envs
    for env in envs:
        env.close()


def _assert_equal(reference: np.ndarray, fast: np.ndarray) -> None:
    assert reference.shape == fast.shape
    differs = np.flatnonzero(np.any(reference != fast, axis=tuple(range(1, reference.ndim))))
    assert differs.size == 0, f"first differs at step {differs[0]}: {np.abs(reference - fast).max():.2e}"


def test_fast_controller_is_on_for_every_robosuite_task():
    assert all(get_task(name).spec.fast_controller for name in ROBOSUITE_TASKS)
    assert not get_task("pen").spec.fast_controller


def _timers(env) -> list[tuple]:
    """Every observable's sampling timer: they decide when robosuite samples mid-step (Can's and
    Square's object poses), so a later observation depends on them."""
    return [
        (o.name, o._time_since_last_sample, o._sampled, o._current_delay)
        for o in env.raw._observables.values()
    ]


def test_random_actions_give_robosuites_states_observations_and_rewards(pair):
    """The fast step samples only the flat keys' observables and builds robosuite's dict when asked:
    the dict is asked for at some steps only, and equals robosuite's there and at the end."""
    task, envs = pair
    actions = np.random.default_rng(7).uniform(-1, 1, size=(40, task.spec.act_dim))
    runs = []
    for env in envs:
        observations, states, outcomes, dicts = [env.reset(11)], [env.sim_state()], [], []
        for step, action in enumerate(actions):
            obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            states.append(env.sim_state())
            outcomes.append((reward, terminated, truncated, info["success"]))
            if step % 7 == 3:
                dicts.append(env.observation_dict())
            if terminated or truncated:
                break
        dicts.append(env.observation_dict())
        runs.append((np.array(observations), np.array(states), outcomes, dicts, _timers(env)))
    (obs_a, states_a, outcomes_a, dicts_a, timers_a), (obs_b, states_b, outcomes_b, dicts_b, timers_b) = runs
    _assert_equal(states_a, states_b)
    _assert_equal(obs_a, obs_b)
    assert outcomes_a == outcomes_b
    assert timers_a == timers_b
    for dict_a, dict_b in zip(dicts_a, dicts_b, strict=True):
        assert dict_a.keys() == dict_b.keys()
        assert all(np.array_equal(dict_a[key], dict_b[key]) for key in dict_a), "robosuite's observation dict"


def test_a_demonstration_attempt_is_the_same_episode(pair):
    """One attempt of `borl demos` (the expert with its noise, a full episode) on each path."""
    task, (reference_env, fast_env) = pair
    reference = make_attempt(task, reference_env, 0, 0, task.spec.demo_noise)
    fast = make_attempt(task, fast_env, 0, 0, task.spec.demo_noise)
    assert reference.success and fast.success
    _assert_equal(reference.states, fast.states)
    _assert_equal(reference.observations, fast.observations)
    _assert_equal(reference.actions, fast.actions)
    _assert_equal(reference.rewards, fast.rewards)  # 1 at the step of success, on both
