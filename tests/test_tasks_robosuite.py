"""The robosuite tasks beyond Lift (can, square, stack, threading) on real robosuite: sizes, seeding,
experts, demos."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from borl.cli import main
from borl.envs import get_task, list_tasks
from borl.formats.robomimic import read_robomimic

# task: (robosuite env, object-state size, simulator state size, the object relative to the gripper)
TASKS = {
    "can": ("PickPlaceCan", 14, 71, "Can_to_robot0_eef_pos"),
    "square": ("NutAssemblySquare", 14, 45, "SquareNut_to_robot0_eef_pos"),
    "stack": ("Stack", 23, 45, "gripper_to_cubeA"),
    "threading": ("Threading_D0", 28, 45, "needle_obj_to_robot0_eef_pos"),
}


@pytest.fixture(scope="module")
def envs():
    """One environment per task, built on first use and shared by this module's tests."""
    made = {}

    def get(name: str):
        if name not in made:
            made[name] = get_task(name).make_env()
        return made[name]

    yield get
    for env in made.values():
        env.close()


def _rollout(env, seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    observations, states = [env.reset(seed)], []
    for action in actions:
        states.append(env.sim_state())
        observations.append(env.step(action)[0])
    return np.stack(observations), np.stack(states)


def test_registry_lists_the_tasks() -> None:
    names = ["lift", "lift-image", "can", "square", "stack", "threading", "pen"]
    assert [t.spec.name for t in list_tasks()] == names
    for name, (env_name, object_size, _, _) in TASKS.items():
        s = get_task(name).spec
        assert s.obs_keys == (
            ("robot0_eef_pos", 3),
            ("robot0_eef_quat", 4),
            ("robot0_gripper_qpos", 2),
            ("object", object_size),
        )
        assert (s.obs_dim, s.act_dim, s.horizon, s.env_name) == (9 + object_size, 7, 400, env_name)
        assert s.demo_noise == 0.15 and s.default_demos >= 1


@pytest.mark.parametrize("name", TASKS)
def test_reset_and_step_shapes(envs, name: str) -> None:
    env = envs(name)
    _, object_size, state_size, relative = TASKS[name]
    obs = env.reset(0)
    assert obs.shape == (9 + object_size,) and obs.dtype == np.float32
    # the first observation is of the reset state, the object relative to the gripper included
    assert np.linalg.norm(env.observation_dict()[relative]) > 0.05
    forced = env.raw._get_observations(force_update=True)
    np.testing.assert_array_equal(obs[9:], forced["object-state"].astype(np.float32))
    assert env.sim_state().shape == (state_size,)
    obs, reward, terminated, truncated, info = env.step(np.zeros(7))
    assert obs.shape == (9 + object_size,) and obs.dtype == np.float32
    assert (reward, terminated, truncated, info) == (0.0, False, False, {"success": False})
    np.testing.assert_array_equal(obs[9:], env.observation_dict()["object-state"].astype(np.float32))


@pytest.mark.parametrize("name", TASKS)
def test_same_seed_same_episode_whatever_came_before(envs, name: str) -> None:
    env = envs(name)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(10, 7))
    first_obs, first_states = _rollout(env, 7, actions)
    _rollout(env, 8, actions[::-1])
    again_obs, again_states = _rollout(env, 7, actions)
    np.testing.assert_array_equal(first_obs, again_obs)
    np.testing.assert_array_equal(first_states, again_states)
    assert not np.array_equal(env.reset(8)[9:], first_obs[0, 9:])  # another seed places the objects elsewhere

    other = get_task(name).make_env()  # a second environment builds the same scene
    try:
        np.testing.assert_array_equal(_rollout(other, 7, actions)[0], first_obs)
    finally:
        other.close()


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expert_succeeds_with_noise(envs, name: str, seed: int) -> None:
    env = envs(name)
    task = get_task(name)
    expert = task.make_expert(env, np.random.default_rng(seed), noise=task.spec.demo_noise)
    obs = env.reset(seed)
    rewards = []
    terminated = truncated = False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(expert.act(obs))
        rewards.append(reward)
    assert info["success"] and terminated and not truncated
    assert rewards[-1] == 1.0 and sum(rewards) == 1.0


def test_demos_command_round_trip(tmp_path) -> None:
    path = tmp_path / "stack.hdf5"
    assert main(["demos", "stack", "--episodes", "2", "--seed", "3", "--out", str(path)]) == 0
    spec = get_task("stack").spec
    episodes = read_robomimic(path, spec)
    assert len(episodes) == 2
    with h5py.File(path, "r") as f:
        assert json.loads(f["data"].attrs["env_args"])["env_name"] == "Stack"
        for i, episode in enumerate(episodes):
            demo = f[f"data/demo_{i}"]
            assert episode.success and episode.terminated and episode.rewards[-1] == 1.0
            assert episode.lineage.source == "demo" and episode.lineage.noise == spec.demo_noise
            assert demo["obs/object"].shape == (len(episode), 23)
            np.testing.assert_array_equal(episode.actions, demo["actions"][()])
            np.testing.assert_array_equal(episode.observations[:-1, 9:], demo["obs/object"][()])
            assert episode.states.shape == (len(episode), 45)


def test_quick_run_of_a_task_with_long_demonstrations(tmp_path, one_thread) -> None:
    """Quick mode's 80-step horizon limits the agent, not the expert: can's demos take 90-150 steps."""
    out = tmp_path / "run"
    args = ["run", "can", "--quick", "--quiet", "--workers", "1", "--rollouts", "2", "--eval-episodes", "2"]
    assert main([*args, "--out", str(out)]) == 0
    lines = (out / "metrics.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("iteration,")
