"""The Adroit pen task: interface, seeding, D4RL's success rule, Minari and D4RL datasets."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import mujoco
import numpy as np
import pytest

from borl.cli import main
from borl.config import build_config
from borl.data.episode import Lineage
from borl.envs import get_task
from borl.envs.pen import goal_achieved_from_obs, success_step
from borl.envs.pen_expert import PenPlanner, PlannerConfig
from borl.errors import BorlError
from borl.formats import read_dataset
from borl.loop import Run

TASK = get_task("pen")
# Zero actions from these seeds hold the goal on 21 steps (success on step 31) and on exactly 20 (failure).
SUCCESS_SEED, TWENTY_SEED = 8, 105


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


def test_planner_sees_the_pen_as_mujoco_does(env) -> None:
    env.reset(3)
    planner = PenPlanner(env, np.random.default_rng(0), 0.0)
    rng = np.random.default_rng(1)
    for _ in range(20):
        env.step(rng.uniform(-0.5, 0.5, size=24))
    data = env.raw.data
    mujoco.mj_forward(env.raw.model, data)
    pos, axis = planner.pen_pose(data.qpos.copy())
    top, bottom = data.site_xpos[env.raw.obj_t_site_id], data.site_xpos[env.raw.obj_b_site_id]
    np.testing.assert_allclose(pos, data.xpos[env.raw.obj_body_id], atol=1e-12)
    np.testing.assert_allclose(axis, (top - bottom) / np.linalg.norm(top - bottom), atol=1e-12)


def test_planner_acts_in_range_and_reproducibly(env) -> None:
    small = PlannerConfig(samples=4, horizon=3, knots=2, budget=10)
    actions = []
    for _ in range(2):
        obs = env.reset(5)
        planner = PenPlanner(env, np.random.default_rng(7), 0.1, small)
        actions.append([])
        for _ in range(2):
            actions[-1].append(planner.act(obs))
            obs = env.step(actions[-1][-1])[0]
    first = np.array(actions[0])
    assert first.shape == (2, 24) and first.dtype == np.float32 and np.abs(first).max() <= 1.0
    np.testing.assert_array_equal(first, np.array(actions[1]))


# Reading datasets -------------------------------------------------------------------------------------


def _write_minari(directory: Path, episodes: list[dict], env_id: str = "AdroitHandPen-v1") -> Path:
    """A Minari dataset directory in minari 0.5's layout with the given per-episode arrays."""
    (directory / "data").mkdir(parents=True)
    env_spec = json.dumps({"id": env_id, "max_episode_steps": 100})
    (directory / "data" / "metadata.json").write_text(json.dumps({"env_spec": env_spec}))
    with h5py.File(directory / "data" / "main_data.hdf5", "w") as f:
        for k, arrays in enumerate(episodes):
            group = f.create_group(f"episode_{k}")
            group.attrs["seed"] = 10 + k
            for name, array in arrays.items():
                group[name] = array
    return directory


def _minari_arrays(t: int, seed: int = 0, success: list[bool] | None = None) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "observations": rng.normal(size=(t + 1, 45)),
        "actions": rng.uniform(-1, 1, size=(t, 24)).astype(np.float32),
        "rewards": rng.normal(size=t),
        "terminations": np.zeros(t, dtype=bool),
        "truncations": np.arange(t) == t - 1,
    }
    if success is not None:
        arrays["infos/success"] = np.array([False, *success])
    return arrays


def test_reads_minari_fixture(fixtures_dir: Path) -> None:
    directory = fixtures_dir / "minari_pen_random"
    episodes = read_dataset(directory, TASK.spec)
    assert read_dataset(directory / "data" / "main_data.hdf5", TASK.spec)[2].lineage.seed == 102
    with h5py.File(directory / "data" / "main_data.hdf5", "r") as f:
        for k, episode in enumerate(episodes):
            group = f[f"episode_{k}"]
            assert episode.observations.shape == (101, 45) and episode.observations.dtype == np.float32
            assert episode.actions.shape == (100, 24) and episode.actions.dtype == np.float32
            np.testing.assert_array_equal(episode.observations, group["observations"][()].astype(np.float32))
            np.testing.assert_array_equal(episode.actions, group["actions"][()])
            # random actions never hold the pen at the target: failures cut off by time, sparse rewards
            assert not (episode.success or episode.terminated) and not episode.rewards.any()
            assert episode.lineage == Lineage("import", 0, k, seed=100 + k)


def test_minari_fixture_starts_where_the_task_resets(fixtures_dir: Path, env) -> None:
    with h5py.File(fixtures_dir / "minari_pen_random" / "data" / "main_data.hdf5", "r") as f:
        first = f["episode_0/observations"][0].astype(np.float32)
    np.testing.assert_array_equal(env.reset(100), first)


def test_minari_episodes_are_cut_at_d4rl_success(tmp_path: Path) -> None:
    goals = [False] * 10 + [True] * 21 + [False] * 9
    held_twenty = [True] * 20 + [False] * 20
    terminated_early = _minari_arrays(40, 2)
    terminated_early["terminations"][14] = True
    directory = _write_minari(
        tmp_path / "d", [_minari_arrays(40, 0, goals), _minari_arrays(40, 1, held_twenty), terminated_early]
    )
    first, second, third = read_dataset(directory, TASK.spec)
    assert (len(first), first.success, first.terminated) == (31, True, True)
    assert first.rewards.tolist() == [0.0] * 30 + [1.0] and first.observations.shape == (32, 45)
    assert (len(second), second.success, second.terminated) == (40, False, False)
    assert (len(third), third.success, third.terminated) == (15, False, True)


def test_d4rl_flat_layout(tmp_path: Path, env) -> None:
    """Two episodes split at timeouts; goal flags recomputed from observations when infos lack them."""
    obs, states = [], []
    for seed in (SUCCESS_SEED, 0):
        o, _ = env.gym.reset(seed=seed)  # gymnasium's own env: it goes on past success, as D4RL's data do
        for _ in range(40):
            states.append(env.sim_state())
            obs.append(o)
            o, *_ = env.gym.step(np.zeros(24))
    obs, states = np.array(obs), np.array(states)
    timeouts = np.zeros(80, dtype=bool)
    timeouts[[39, 79]] = True
    path = tmp_path / "pen-zero.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"], f["actions"], f["rewards"] = obs, np.zeros((80, 24)), np.zeros(80)
        f["terminals"], f["timeouts"] = np.zeros(80, dtype=bool), timeouts
        f["infos/qpos"], f["infos/qvel"], f["infos/desired_orien"] = (
            states[:, :30],
            states[:, 30:60],
            states[:, 60:],
        )
    success, failure = read_dataset(path, TASK.spec)
    assert (len(success), success.success, success.terminated) == (31, True, True)  # as the task decides
    assert (len(failure), failure.success, failure.terminated) == (39, False, False)  # last step dropped
    np.testing.assert_array_equal(success.observations, obs[:32].astype(np.float32))
    np.testing.assert_array_equal(success.states, states[:31])
    assert success.rewards[-1] == 1.0 and failure.lineage == Lineage("import", 0, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: a.update(actions=a["actions"][:, :7]),
            r"actions have shape \(40, 7\), expected \(T, 24\)",
        ),
        (lambda a: a.update(observations=a["observations"][:, :40]), r"observations have shape \(41, 40\)"),
        (lambda a: a.update(observations=a["observations"][:40]), r"expected \(41, 45\) for task 'pen'"),
        (lambda a: a["observations"].__setitem__((3, 4), np.nan), "observations has NaN or infinite"),
        (lambda a: a["actions"].__setitem__((0, 0), np.inf), "actions has NaN or infinite"),
        (lambda a: a.pop("terminations"), "episode_0: missing 'terminations'"),
        (lambda a: a.update({"infos/success": np.zeros(7, dtype=bool)}), r"infos/success has shape \(7,\)"),
    ],
)
def test_bad_minari_episode(tmp_path: Path, change, message: str) -> None:
    arrays = _minari_arrays(40)
    change(arrays)
    with pytest.raises(BorlError, match=message):
        read_dataset(_write_minari(tmp_path / "d", [arrays]), TASK.spec)


def test_bad_dataset_paths(tmp_path: Path) -> None:
    with pytest.raises(BorlError, match="no data/main_data.hdf5 in this folder"):
        read_dataset(tmp_path, TASK.spec)
    with pytest.raises(BorlError, match="absent.hdf5: no such file"):
        read_dataset(tmp_path / "absent.hdf5", TASK.spec)
    (tmp_path / "text.hdf5").write_text("no\n")
    with pytest.raises(BorlError, match="not an HDF5 file"):
        read_dataset(tmp_path / "text.hdf5", TASK.spec)
    with h5py.File(tmp_path / "other.hdf5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(BorlError, match="not a robomimic .*, Minari .* or D4RL"):
        read_dataset(tmp_path / "other.hdf5", TASK.spec)
    directory = _write_minari(tmp_path / "door", [_minari_arrays(5)], env_id="AdroitHandDoor-v1")
    with pytest.raises(BorlError, match="recorded in env 'AdroitHandDoor-v1', but task 'pen'"):
        read_dataset(directory, TASK.spec)
    with pytest.raises(BorlError, match="read for task 'pen' only; task 'lift' takes robomimic"):
        read_dataset(directory, get_task("lift").spec)


def test_run_stores_the_dataset_as_d0(tmp_path: Path) -> None:
    dataset = _write_minari(tmp_path / "d", [_minari_arrays(30, k) for k in range(3)])
    config = build_config("recipe", True, {"task": "pen", "dataset": str(dataset), "demos": 2})
    run = Run.create(tmp_path / "run", config)
    demos = run.data.load(0, "demo")
    assert [(e.lineage.source, e.lineage.index, e.lineage.seed, len(e)) for e in demos] == [
        ("demo", 0, 10, 30),
        ("demo", 1, 11, 30),
    ]


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    arrays = _minari_arrays(40)
    arrays["observations"][5, 5] = np.nan
    dataset = _write_minari(tmp_path / "d", [arrays])
    out = tmp_path / "run"
    assert main(["run", "pen", "--quiet", "--dataset", str(dataset), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "episode_0: observations has NaN or infinite values" in err
    assert not out.exists()
