"""Episodes from D4RL's pen datasets: Minari's layout (the current home of D4RL's data) and D4RL's own
flat HDF5 layout.

Minari: a dataset directory holding data/main_data.hdf5, with one group episode_k per episode
(observations (T+1, 45), actions (T, 24), rewards, terminations, truncations (T,), infos/*; infos rows
are T+1 long, the first from reset()), and data/metadata.json (env_spec names the environment).
D4RL: one file with observations (N, 45), actions (N, 24), rewards, terminals, timeouts (N,), optionally
next_observations and infos/* (goal_achieved, qpos, qvel, desired_orien); an episode ends at a
terminal or a timeout. Without next_observations each episode's last transition is dropped, as d4rl's
own qlearning_dataset does, since its next observation is not stored.

Episodes are turned into borl's convention with D4RL's success rule (borl/envs/pen.py): the per-step
goal flags come from infos/success (Minari) or infos/goal_achieved (D4RL) where recorded, otherwise they
are recomputed exactly from each next observation (it holds the pen's and target's orientations and
their distance). An episode is cut after the step on which the goal has held more than 20 times; it is
then terminated and successful with reward 1 there. Otherwise it ends terminated (no success) at the
dataset's own first termination, or is kept whole as a failure cut off by time. The dataset's dense
rewards are replaced by borl's sparse ones. Replaying actions in the simulator is not needed for any of
this and is not done. D4RL's infos/qpos, qvel and desired_orien, where present, become the episodes'
states (the pen task's sim_state() rows).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from borl.data.episode import Episode, Lineage
from borl.envs.base import TaskSpec
from borl.envs.pen import goal_achieved_from_obs, success_step
from borl.errors import BorlError

_EPISODE_NAME = re.compile(r"episode_(\d+)")
_STATE_KEYS = ("qpos", "qvel", "desired_orien")


def minari_data_file(path: Path) -> Path:
    """The main_data.hdf5 of a Minari dataset directory (or of its data/ folder)."""
    for candidate in (path / "data" / "main_data.hdf5", path / "main_data.hdf5"):
        if candidate.is_file():
            return candidate
    raise BorlError(f"{path}: no data/main_data.hdf5 in this folder (not a Minari dataset directory)")


def is_minari_file(f: h5py.File) -> bool:
    return any(_EPISODE_NAME.fullmatch(name) for name in f)


def is_d4rl_file(f: h5py.File) -> bool:
    return isinstance(f.get("observations"), h5py.Dataset)


def read_minari(path: str | os.PathLike, spec: TaskSpec) -> list[Episode]:
    """Read every episode_k of a Minari dataset (a directory, or its main_data.hdf5), in numeric order."""
    path = Path(path)
    data_file = minari_data_file(path) if path.is_dir() else path
    _check_task(spec, data_file)
    _check_env_spec(data_file.parent / "metadata.json", spec)
    with open_hdf5(data_file) as f:
        names = sorted((n for n in f if _EPISODE_NAME.fullmatch(n)), key=lambda n: int(n[8:]))
        if not names:
            raise BorlError(f"{data_file}: no episodes (episode_k groups) in the file")
        return [
            _read_minari_episode(f[name], spec, f"{data_file}: {name}", i) for i, name in enumerate(names)
        ]


def _read_minari_episode(group: h5py.Group, spec: TaskSpec, where: str, index: int) -> Episode:
    if not isinstance(group, h5py.Group):
        raise BorlError(f"{where}: not a group")
    actions = _actions(group, spec, where)
    t = len(actions)
    observations = _observations(group, "observations", spec, where, t + 1)
    terminations = _flags(group, "terminations", where, t)
    infos = group.get("infos")
    goals = _info_flags(infos, "success", where, t)
    seed = group.attrs.get("seed")
    seed = int(seed) if isinstance(seed, int | np.integer) else None
    return _episode(observations, actions, goals, terminations, Lineage("import", 0, index, seed=seed), None)


def read_d4rl(path: str | os.PathLike, spec: TaskSpec) -> list[Episode]:
    """Read a D4RL HDF5 file (flat arrays, episodes split at terminals and timeouts)."""
    path = Path(path)
    _check_task(spec, path)
    with open_hdf5(path) as f:
        where = str(path)
        actions = _actions(f, spec, where)
        n = len(actions)
        observations = _observations(f, "observations", spec, where, n)
        has_next = "next_observations" in f
        next_observations = _observations(f, "next_observations", spec, where, n) if has_next else None
        ends = _flags(f, "terminals", where, n)
        timeouts = _flags(f, "timeouts", where, n)
        infos = f.get("infos")
        goals = _info_flags(infos, "goal_achieved", where, n)
        states = _d4rl_states(infos, where, n)
    boundaries = np.flatnonzero(ends | timeouts) + 1
    episodes = []
    for start, stop in zip(np.r_[0, boundaries], np.r_[boundaries, n], strict=True):
        if next_observations is not None:
            obs = np.concatenate([observations[start:stop], next_observations[stop - 1 : stop]])
        else:
            obs, stop = observations[start:stop], stop - 1
        if stop <= start:
            continue
        episodes.append(
            _episode(
                obs,
                actions[start:stop],
                None if goals is None else goals[start:stop],
                ends[start:stop],
                Lineage("import", 0, len(episodes)),
                None if states is None else states[start:stop],
            )
        )
    if not episodes:
        raise BorlError(f"{path}: no episode with at least one complete transition")
    return episodes


def _episode(
    observations: np.ndarray,
    actions: np.ndarray,
    goals: np.ndarray | None,
    terminations: np.ndarray,
    lineage: Lineage,
    states: np.ndarray | None,
) -> Episode:
    """An episode in borl's convention: cut at D4RL success (terminal, reward 1) or at the dataset's first
    termination (terminal failure), else whole (cut off by time)."""
    if goals is None:
        goals = goal_achieved_from_obs(observations[1:])  # before the cast to float32, as recorded
    cut = success_step(goals)
    success = cut is not None
    ended = np.flatnonzero(terminations)
    if not success and len(ended):
        cut = int(ended[0])
    t = len(actions) if cut is None else cut + 1
    rewards = np.zeros(t, dtype=np.float32)
    rewards[-1] = float(success)
    return Episode(
        observations=observations[: t + 1].astype(np.float32),
        actions=actions[:t],
        rewards=rewards,
        terminated=cut is not None,
        success=success,
        lineage=lineage,
        states=None if states is None else states[:t],
    )


def _check_task(spec: TaskSpec, path: Path) -> None:
    if spec.env_name != "AdroitHandPen-v1":
        raise BorlError(
            f"{path}: Minari and D4RL datasets are read for task 'pen' only; task '{spec.name}' takes "
            "robomimic HDF5 files"
        )


def _check_env_spec(metadata: Path, spec: TaskSpec) -> None:
    """Refuse a Minari dataset recorded in another environment (its metadata's env_spec id)."""
    if not metadata.is_file():
        return
    try:
        env_spec = json.loads(json.loads(metadata.read_text()).get("env_spec") or "null")
    except (json.JSONDecodeError, AttributeError, TypeError) as e:
        raise BorlError(f"{metadata}: not Minari's metadata JSON ({e})") from e
    env_id = env_spec.get("id") if isinstance(env_spec, dict) else None
    # AdroitHandPenSparse-v1 differs only in its reward, which borl does not use.
    if env_id is not None and not env_id.startswith(spec.env_name.split("-v")[0]):
        raise BorlError(
            f"{metadata}: recorded in env '{env_id}', but task '{spec.name}' uses '{spec.env_name}'"
        )


@contextmanager
def open_hdf5(path: Path) -> Iterator[h5py.File]:
    """h5py.File for reading, with missing, non-HDF5 and unreadable files as one-line BorlErrors."""
    if not path.is_file():
        raise BorlError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise BorlError(f"{path}: not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise BorlError(f"{path}: cannot read HDF5 file ({e})") from e
    with f:
        yield f


def _read(group: h5py.Group, name: str, where: str) -> np.ndarray:
    item = group.get(name)
    if isinstance(item, h5py.Group):
        raise BorlError(f"{where}: '{name}' is a group (dictionary space); only flat arrays are read")
    if not isinstance(item, h5py.Dataset):
        raise BorlError(f"{where}: missing '{name}'")
    try:
        return item[()]
    except OSError as e:
        raise BorlError(f"{where}: cannot read '{name}' ({e})") from e


def _actions(group: h5py.Group, spec: TaskSpec, where: str) -> np.ndarray:
    actions = _read(group, "actions", where)
    if actions.ndim != 2 or actions.shape[1] != spec.act_dim:
        expected = f"(T, {spec.act_dim})"
        raise BorlError(
            f"{where}: actions have shape {actions.shape}, expected {expected} for task '{spec.name}'"
        )
    if len(actions) == 0:
        raise BorlError(f"{where}: no steps (0 actions)")
    _check_finite(actions, f"{where}: actions")
    return actions.astype(np.float32)


def _observations(group: h5py.Group, name: str, spec: TaskSpec, where: str, rows: int) -> np.ndarray:
    obs = _read(group, name, where)
    if obs.shape != (rows, spec.obs_dim):
        expected = (rows, spec.obs_dim)
        raise BorlError(f"{where}: {name} have shape {obs.shape}, expected {expected} for task '{spec.name}'")
    _check_finite(obs, f"{where}: {name}")
    return obs


def _flags(group: h5py.Group, name: str, where: str, rows: int) -> np.ndarray:
    flags = _read(group, name, where)
    if flags.shape != (rows,):
        raise BorlError(f"{where}: {name} have shape {flags.shape}, expected ({rows},)")
    return flags.astype(bool)


def _info_flags(infos: h5py.Group | None, name: str, where: str, steps: int) -> np.ndarray | None:
    """The flags infos/<name> after each of `steps` actions, or None where not recorded. A row more than
    the steps is reset()'s (Minari's layout) and is dropped."""
    if not isinstance(infos, h5py.Group) or name not in infos:
        return None
    flags = _read(infos, name, f"{where}: infos")
    if flags.shape not in ((steps,), (steps + 1,)):
        raise BorlError(
            f"{where}: infos/{name} has shape {flags.shape}, expected ({steps},) or ({steps + 1},)"
        )
    return flags[len(flags) - steps :].astype(bool)


def _d4rl_states(infos: h5py.Group | None, where: str, n: int) -> np.ndarray | None:
    """D4RL's per-step env state (qpos, qvel, desired_orien) flattened like the pen task's sim_state()."""
    if not isinstance(infos, h5py.Group) or not all(key in infos for key in _STATE_KEYS):
        return None
    parts = [_read(infos, key, f"{where}: infos") for key in _STATE_KEYS]
    for key, part in zip(_STATE_KEYS, parts, strict=True):
        if part.ndim != 2 or len(part) != n:
            raise BorlError(f"{where}: infos/{key} has shape {part.shape}, expected ({n}, ...)")
        _check_finite(part, f"{where}: infos/{key}")
    return np.concatenate(parts, axis=1)


def _check_finite(array: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(array)):
        raise BorlError(f"{what} has NaN or infinite values")
