"""Transitions of many episodes as normalised tensors, sampled in batches without copying the buffer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from borl.data.episode import Episode
from borl.data.normalization import Normalizer
from borl.data.observations import channels_first, network_rows, random_crop


class TransitionDataset:
    """All transitions of a set of episodes, normalised once and kept as contiguous tensors.

    Each observation is stored once (an episode's T + 1 observations in a row); a transition's obs
    and next_obs are gathered from that one array by row index, which halves the memory of storing
    both. terminals marks transitions into a terminal state (success): the critic does not bootstrap
    past them. The last transition of a timed-out episode is not terminal.

    returns holds each transition's discounted return-to-go within its episode (every stored episode
    is complete): the true value of the behaviour that followed, and with rewards >= 0 a lower bound
    on the optimal Q even where a time-out cut the episode short.

    Image episodes' pictures are kept as one uint8 tensor (rows, cameras, 3, H, W), decoded once when
    the dataset is built; a batch gathers its rows, crops each picture at a random offset (`crop`,
    from the phase's generator, so training stays reproducible) and returns obs and next_obs in the
    network layout of borl/data/observations.py.
    """

    def __init__(
        self,
        episodes: Sequence[Episode],
        normalizer: Normalizer,
        device: str = "cpu",
        discount: float = 0.99,
        crop: int = 76,
    ) -> None:
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
        self.crop = crop
        self.images = None
        if episodes[0].images is not None:
            self.images = channels_first(np.concatenate([e.images for e in episodes])).to(self.device)
        self.obs_rows = torch.from_numpy(obs_rows).to(self.device)
        self.tensors = {
            "actions": torch.from_numpy(np.clip(normalizer.normalize_actions(actions), -1, 1)),
            "rewards": torch.from_numpy(rewards),
            "terminals": torch.from_numpy(terminals),
            "returns": torch.from_numpy(returns_to_go(rewards, lengths, discount)),
        }
        self.tensors = {k: v.to(self.device) for k, v in self.tensors.items()}

    def nbytes(self) -> int:
        """Bytes held by the dataset's tensors."""
        tensors = [self.observations, self.obs_rows, *self.tensors.values()]
        tensors += [] if self.images is None else [self.images]
        return sum(t.numel() * t.element_size() for t in tensors)

    def subset(self, episode_mask: np.ndarray) -> torch.Tensor:
        """Indices of the transitions whose episode is selected by a boolean mask over episodes."""
        return torch.from_numpy(np.flatnonzero(episode_mask[self.episode_of])).to(self.device)

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator,
        indices: torch.Tensor | None = None,
        favoured: torch.Tensor | None = None,
        share: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """A uniform batch of transitions (from `indices` when given): one gather per field.

        With `favoured` (transition indices) and a share above 0, round(share * batch_size) of the
        rows are drawn uniformly from `favoured` and the rest from `indices`, whatever the two sets'
        sizes (RLPD's symmetric sampling when share is 0.5).
        """
        count = 0 if favoured is None else round(share * batch_size)
        picks = self._uniform(batch_size - count, generator, indices)
        if count:
            picks = torch.cat([self._uniform(count, generator, favoured), picks])
        rows = self.obs_rows.index_select(0, picks)
        batch = {k: v.index_select(0, picks) for k, v in self.tensors.items()}
        for key, index in (("obs", rows), ("next_obs", rows + 1)):
            low = self.observations.index_select(0, index)
            pictures = None
            if self.images is not None:
                pictures = random_crop(self.images.index_select(0, index), self.crop, generator)
            batch[key] = network_rows(low, pictures)
        return batch

    def _uniform(self, count: int, generator: torch.Generator, indices: torch.Tensor | None) -> torch.Tensor:
        """`count` transition indices drawn uniformly from `indices` (from all when None)."""
        high = self.size if indices is None else len(indices)
        picks = torch.randint(high, (count,), generator=generator, device=self.device)
        return picks if indices is None else indices[picks]


def returns_to_go(rewards: np.ndarray, lengths: np.ndarray, discount: float) -> np.ndarray:
    """Discounted return-to-go G_t = r_t + discount * G_{t+1} of concatenated episodes (float32), each
    episode's G ending at its own last step."""
    returns = np.empty(len(rewards), dtype=np.float64)
    ends = np.cumsum(lengths)
    for start, end in zip(ends - lengths, ends, strict=True):
        following = 0.0
        for t in range(end - 1, start - 1, -1):
            following = rewards[t] + discount * following
            returns[t] = following
    return returns.astype(np.float32)
