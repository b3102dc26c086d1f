"""borl's compiled controller (borl/envs/fast_osc.py) against robosuite's own step, on real robosuite:
the same states and observations, per step and at the end of full episodes, to floating-point rounding.

Tolerances: the two paths run the same operations on the same values, but the compiled kernel's BLAS
and LAPACK calls (numba's, through SciPy's OpenBLAS) and robosuite's (NumPy's OpenBLAS) may round
the last bit differently, a torque differing by one ulp (about 1e-14 N m) every few dozen substeps.
That stays at 1e-11 or below in the simulator's state where contacts are steady (STATE_TOLERANCE
leaves a margin of 1000), and observations, float32, agree to OBS_TOLERANCE. Square's nut meets the
gripper and the peg in contacts whose onset a 1e-14 difference can move by one substep, so its
episode is compared exactly up to the grasp and by outcome after it (docs/performance.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from borl.envs.demos import make_attempt
from borl.envs.registry import get_task

STATE_TOLERANCE = 1e-8
OBS_TOLERANCE = 1e-6
ROBOSUITE_TASKS = ("lift", "can", "square", "stack", "threading")
# Square's expert grasps the nut after about 30 steps; before that its states agree like the others'.
CONTACT_CHAOTIC = {"square": 25}


@pytest.fixture(scope="module", params=ROBOSUITE_TASKS)
def pair(request):
    """The task and two environments of it: robosuite's own step and the fast one."""
    task = get_task(request.param)
    envs = task.make_env(fast_controller=False), task.make_env(fast_controller=True)
    yield task, envs
    for env in envs:
        env.close()


def _compare(task_name: str, reference: np.ndarray, fast: np.ndarray, tolerance: float) -> None:
    steps = min(len(reference), len(fast), CONTACT_CHAOTIC.get(task_name, len(reference)))
    difference = np.abs(reference[:steps] - fast[:steps]).max(axis=1)
    assert difference.max() <= tolerance, f"step {int(difference.argmax())}: {difference.max():.2e}"


def test_fast_controller_is_on_for_every_robosuite_task():
    assert all(get_task(name).spec.fast_controller for name in ROBOSUITE_TASKS)
    assert not get_task("pen").spec.fast_controller


def test_random_actions_give_robosuites_states_and_observations(pair):
    task, envs = pair
    actions = np.random.default_rng(7).uniform(-1, 1, size=(40, task.spec.act_dim))
    runs = []
    for env in envs:
        observations, states = [env.reset(11)], [env.sim_state()]
        for action in actions:
            obs, _, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            states.append(env.sim_state())
            if terminated or truncated:
                break
        runs.append((np.array(observations), np.array(states)))
    (obs_a, states_a), (obs_b, states_b) = runs
    assert states_a.shape == states_b.shape
    _compare(task.name, states_a, states_b, STATE_TOLERANCE)
    _compare(task.name, obs_a, obs_b, OBS_TOLERANCE)


def test_a_demonstration_attempt_is_the_same_episode(pair):
    """One attempt of `borl demos` (the expert with its noise, a full episode) on each path."""
    task, (reference_env, fast_env) = pair
    reference = make_attempt(task, reference_env, 0, 0, task.spec.demo_noise)
    fast = make_attempt(task, fast_env, 0, 0, task.spec.demo_noise)
    assert (fast.success, len(fast)) == (reference.success, len(reference))
    assert reference.success
    _compare(task.name, reference.states, fast.states, STATE_TOLERANCE)
    _compare(task.name, reference.observations, fast.observations, OBS_TOLERANCE)
    if task.name not in CONTACT_CHAOTIC:
        assert np.abs(reference.states[-1] - fast.states[-1]).max() <= STATE_TOLERANCE
