"""Transitions of many episodes as normalised tensors, sampled in batches without copying the buffer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from borl.data.episode import Episode
from borl.data.normalization import Normalizer


class TransitionDataset:
    """All transitions of a set of episodes, normalised once and kept as contiguous tensors.

    terminals marks transitions into a terminal state (success): the critic does not bootstrap past
    them. The last transition of a timed-out episode is not terminal. `weights` optionally holds a
    per-episode sampling weight repeated per transition (e.g. filtered IL sets failures to zero).
    """

    def __init__(self, episodes: Sequence[Episode], normalizer: Normalizer, device: str = "cpu") -> None:
        if not episodes:
            raise ValueError("no episodes to train on")
        obs = np.concatenate([e.observations[:-1] for e in episodes])
        next_obs = np.concatenate([e.observations[1:] for e in episodes])
        actions = np.concatenate([e.actions for e in episodes])
        rewards = np.concatenate([e.rewards for e in episodes]).astype(np.float32)
        terminals = np.zeros(len(actions), dtype=np.float32)
        ends = np.cumsum([len(e) for e in episodes]) - 1
        terminals[ends[[e.terminated for e in episodes]]] = 1.0
        self.episode_of = np.repeat(np.arange(len(episodes)), [len(e) for e in episodes])
        self.size = len(actions)
        self.device = torch.device(device)
        self.tensors = {
            "obs": torch.from_numpy(normalizer.normalize_obs(obs)),
            "next_obs": torch.from_numpy(normalizer.normalize_obs(next_obs)),
            "actions": torch.from_numpy(np.clip(normalizer.normalize_actions(actions), -1, 1)),
            "rewards": torch.from_numpy(rewards),
            "terminals": torch.from_numpy(terminals),
        }
        self.tensors = {k: v.to(self.device) for k, v in self.tensors.items()}

    def subset(self, episode_mask: np.ndarray) -> torch.Tensor:
        """Indices of the transitions whose episode is selected by a boolean mask over episodes."""
        return torch.from_numpy(np.flatnonzero(episode_mask[self.episode_of])).to(self.device)

    def sample(
        self, batch_size: int, generator: torch.Generator, indices: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """A uniform batch of transitions (from `indices` when given): one gather per field."""
        high = self.size if indices is None else len(indices)
        picks = torch.randint(high, (batch_size,), generator=generator, device=self.device)
        if indices is not None:
            picks = indices[picks]
        return {k: v.index_select(0, picks) for k, v in self.tensors.items()}
