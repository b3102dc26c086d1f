"""Transitions of many episodes as normalised tensors, sampled in batches without copying the buffer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from borl.data.episode import Episode
from borl.data.normalization import Normalizer


class TransitionDataset:
    """All transitions of a set of episodes, normalised once and kept as contiguous tensors.

    Each observation is stored once (an episode's T + 1 observations in a row); a transition's obs
    and next_obs are gathered from that one array by row index, which halves the memory of storing
    both. terminals marks transitions into a terminal state (success): the critic does not bootstrap
    past them. The last transition of a timed-out episode is not terminal.
    """

    def __init__(self, episodes: Sequence[Episode], normalizer: Normalizer, device: str = "cpu") -> None:
        if not episodes:
            raise ValueError("no episodes to train on")
        lengths = np.array([len(e) for e in episodes])
        observations = np.concatenate([e.observations for e in episodes]).astype(np.float32, copy=False)
        normalizer.normalize_obs(observations, in_place=True)
        self.episode_of = np.repeat(np.arange(len(episodes)), lengths)
        # Episode k's observations hold one row more than its transitions: transition g sits at row g + k.
        obs_rows = np.arange(lengths.sum()) + self.episode_of
        actions = np.concatenate([e.actions for e in episodes])
        rewards = np.concatenate([e.rewards for e in episodes]).astype(np.float32)
        terminals = np.zeros(len(actions), dtype=np.float32)
        terminals[(np.cumsum(lengths) - 1)[[e.terminated for e in episodes]]] = 1.0
        self.size = len(actions)
        self.device = torch.device(device)
        self.observations = torch.from_numpy(observations).to(self.device)
        self.obs_rows = torch.from_numpy(obs_rows).to(self.device)
        self.tensors = {
            "actions": torch.from_numpy(np.clip(normalizer.normalize_actions(actions), -1, 1)),
            "rewards": torch.from_numpy(rewards),
            "terminals": torch.from_numpy(terminals),
        }
        self.tensors = {k: v.to(self.device) for k, v in self.tensors.items()}

    def nbytes(self) -> int:
        """Bytes held by the dataset's tensors."""
        tensors = [self.observations, self.obs_rows, *self.tensors.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

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
        rows = self.obs_rows.index_select(0, picks)
        batch = {k: v.index_select(0, picks) for k, v in self.tensors.items()}
        batch["obs"] = self.observations.index_select(0, rows)
        batch["next_obs"] = self.observations.index_select(0, rows + 1)
        return batch
