"""Demonstrations from a file or folder, read by its layout: robomimic (borl/formats/robomimic.py) or
D4RL's pen data in Minari's or D4RL's own layout (borl/formats/minari.py)."""

from __future__ import annotations

import os
from pathlib import Path

from borl.data.episode import Episode
from borl.envs.base import TaskSpec
from borl.errors import BorlError
from borl.formats.minari import is_d4rl_file, is_minari_file, open_hdf5, read_d4rl, read_minari
from borl.formats.robomimic import read_robomimic


def read_dataset(path: str | os.PathLike, spec: TaskSpec) -> list[Episode]:
    """Every episode of a robomimic HDF5 file (or robosuite's raw one), a Minari dataset directory (or its
    main_data.hdf5) or a D4RL HDF5 file, as borl Episodes; problems raise one-line BorlErrors."""
    path = Path(path)
    if path.is_dir():
        return read_minari(path, spec)
    with open_hdf5(path) as f:
        robomimic, minari, d4rl = "data" in f, is_minari_file(f), is_d4rl_file(f)
    if robomimic:
        return read_robomimic(path, spec)
    if minari:
        return read_minari(path, spec)
    if d4rl:
        return read_d4rl(path, spec)
    raise BorlError(
        f"{path}: not a robomimic (data/demo_i), Minari (episode_k) or D4RL (observations, actions) file"
    )
