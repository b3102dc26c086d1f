"""Append-only, crash-safe episode storage: one file per episode, published by an atomic rename.

A reader never sees a partial episode (temporary files are ignored), and an episode whose `append`
returned is on disk (file and directory are fsynced). An episode's name comes from its lineage, so
writing the same episode twice is refused: resuming a run never duplicates data.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from borl.data.episode import Episode, Lineage
from borl.errors import BorlError
from borl.files import TEMPORARY_SUFFIX, write_atomic

_SUFFIX = ".npz"


def episode_name(lineage: Lineage) -> str:
    """The file name that identifies an episode within a store."""
    return f"iter_{lineage.iteration:03d}/{lineage.source}_{lineage.index:05d}{_SUFFIX}"


def encode_images(images: np.ndarray) -> np.ndarray:
    """(T+1, cameras, H, W, 3) uint8 pictures as compressed bytes: each frame's difference from the one
    before (mod 256), deflated at level 1. On lift-image's 84x84 renders that is 4.1x smaller at 1.5 ms
    a step, against 2.7x at 10 ms for the pictures themselves at npz's level 6 (docs/images.md)."""
    deltas = images.copy()
    deltas[1:] -= images[:-1]
    return np.frombuffer(zlib.compress(deltas.tobytes(), 1), dtype=np.uint8)


def decode_images(data: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Inverse of `encode_images`."""
    deltas = np.frombuffer(zlib.decompress(data.tobytes()), dtype=np.uint8).reshape(tuple(shape))
    return np.cumsum(deltas, axis=0, dtype=np.uint8)


def encode_episode(episode: Episode) -> bytes:
    """Serialise an episode to npz bytes (also the wire format between collection workers); an image
    episode's pictures are compressed by `encode_images`."""
    arrays = {
        "observations": np.asarray(episode.observations, dtype=np.float32),
        "actions": np.asarray(episode.actions, dtype=np.float32),
        "rewards": np.asarray(episode.rewards, dtype=np.float32),
        "terminated": np.asarray(episode.terminated),
        "success": np.asarray(episode.success),
        "lineage": np.asarray(json.dumps(episode.lineage.to_dict())),
    }
    if episode.states is not None:
        arrays["states"] = np.asarray(episode.states)
    if episode.images is not None:
        arrays["images"] = encode_images(episode.images)
        arrays["images_shape"] = np.asarray(episode.images.shape)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_episode(data: bytes | Path) -> Episode:
    """Inverse of `encode_episode`; accepts bytes or a file path."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with np.load(source, allow_pickle=False) as f:
        return Episode(
            observations=f["observations"],
            actions=f["actions"],
            rewards=f["rewards"],
            terminated=bool(f["terminated"]),
            success=bool(f["success"]),
            lineage=Lineage(**json.loads(str(f["lineage"]))),
            states=f["states"] if "states" in f.files else None,
            images=_stored_images(f),
        )


def _stored_images(f: np.lib.npyio.NpzFile) -> np.ndarray | None:
    """An episode's pictures: frame deltas with their shape, or (stores written before the deltas)
    the uint8 pictures themselves."""
    if "images" not in f.files:
        return None
    if "images_shape" not in f.files:
        return f["images"]
    return decode_images(f["images"], f["images_shape"])


class EpisodeStore:
    """A directory of episodes, grouped by iteration."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_of(self, lineage: Lineage) -> Path:
        return self.root / episode_name(lineage)

    def append(self, episode: Episode) -> Path:
        """Write an episode durably; refuses to overwrite one already stored."""
        path = self.path_of(episode.lineage)
        if path.exists():
            raise BorlError(f"episode {episode_name(episode.lineage)} is already stored in {self.root}")
        write_atomic(path, encode_episode(episode))
        return path

    def paths(self, iteration: int | None = None, source: str | None = None) -> list[Path]:
        """Stored episode files in (iteration, source, index) order; temporary files never appear."""
        pattern = f"iter_{iteration:03d}" if iteration is not None else "iter_*"
        paths = sorted(self.root.glob(f"{pattern}/{source or ''}*{_SUFFIX}"))
        # The source exactly: "gate" must not take "gate_plain"'s episodes.
        return paths if source is None else [p for p in paths if p.stem.rsplit("_", 1)[0] == source]

    def indices(self, iteration: int, source: str) -> set[int]:
        """Indices of the episodes already stored for one batch (what a resumed collection skips)."""
        return {int(p.stem.rsplit("_", 1)[1]) for p in self.paths(iteration, source)}

    def outcomes(self, iteration: int, source: str) -> dict[int, bool]:
        """Each stored episode's success by index, reading only that field of each file."""
        outcomes = {}
        for path in self.paths(iteration, source):
            with np.load(path, allow_pickle=False) as f:
                outcomes[int(path.stem.rsplit("_", 1)[1])] = bool(f["success"])
        return outcomes

    def load(self, iteration: int | None = None, source: str | None = None) -> list[Episode]:
        return list(self.iter_episodes(iteration, source))

    def iter_episodes(self, iteration: int | None = None, source: str | None = None) -> Iterator[Episode]:
        for path in self.paths(iteration, source):
            yield decode_episode(path)

    def remove_temporary(self) -> int:
        """Delete leftovers of writes interrupted by a crash; returns how many."""
        leftovers = list(self.root.glob(f"iter_*/.*{TEMPORARY_SUFFIX}"))
        for path in leftovers:
            path.unlink()
        return len(leftovers)
