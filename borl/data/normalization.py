"""Observation and action normalisation fitted on a run's data.

Observations are standardised and clipped: with few demonstrations some dimensions barely vary (the
cube's height spreads over millimetres), so states off the demonstrated paths would normalise to huge
values and the critic would extrapolate wildly. A floor on the standard deviation and a clip bound it.
Actions are mapped from the data's per-dimension range to [-1, 1], the range the diffusion sampler clips to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from borl.data.episode import Episode

OBS_STD_FLOOR = 1e-2
OBS_CLIP = 5.0
ACTION_HALF_RANGE_FLOOR = 1e-2


@dataclass
class Normalizer:
    obs_mean: np.ndarray
    obs_std: np.ndarray
    act_low: np.ndarray
    act_high: np.ndarray

    @classmethod
    def fit(cls, observations: np.ndarray, actions: np.ndarray) -> Normalizer:
        """Statistics of observations (N, obs_dim) and actions (M, act_dim)."""
        obs = np.asarray(observations, dtype=np.float64)
        moments = (len(obs), obs.sum(0), np.square(obs).sum(0))
        return cls._from_moments(*moments, actions.min(0), actions.max(0))

    @classmethod
    def fit_episodes(cls, episodes: Iterable[Episode]) -> Normalizer:
        """Observation statistics from the episodes that count as successful (demonstrations do), the
        action range from all of them; one episode at a time, with no concatenated copy of the data.

        Failed rollouts run to the time limit, outnumber the successful steps several times and wander
        off the demonstrated paths: standardising by their spread (up to 27x the demonstrations' on
        threading) squeezed the states a policy must tell apart: behaviour cloning on all data reached
        0%, against 36% with these statistics (docs/results/normalisation). States far off the
        successful paths read as the clip.
        With no successful episode, observations come from all of them.
        """
        moments = {True: [0, 0.0, 0.0], False: [0, 0.0, 0.0]}
        act_min, act_max = np.inf, -np.inf
        for episode in episodes:
            obs = episode.observations.astype(np.float64)
            sums = moments[episode.counts_as_success]
            sums[0] += len(obs)
            sums[1] = sums[1] + obs.sum(0)
            sums[2] = sums[2] + np.square(obs).sum(0)
            act_min = np.minimum(act_min, episode.actions.min(0))
            act_max = np.maximum(act_max, episode.actions.max(0))
        count, total, squares = moments[True]
        if count == 0:
            count, total, squares = moments[False]
        return cls._from_moments(count, total, squares, act_min, act_max)

    @classmethod
    def _from_moments(
        cls, count: int, total: np.ndarray, squares: np.ndarray, act_min: np.ndarray, act_max: np.ndarray
    ) -> Normalizer:
        """From float64 sums of observations and their squares, and the actions' per-dimension range."""
        if count == 0:
            raise ValueError("no observations to fit the normaliser on")
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
        centre = (act_max + act_min) / 2
        half = np.maximum((act_max - act_min) / 2, ACTION_HALF_RANGE_FLOOR)
        return cls(
            obs_mean=mean.astype(np.float32),
            obs_std=np.maximum(std, OBS_STD_FLOOR).astype(np.float32),
            act_low=(centre - half).astype(np.float32),
            act_high=(centre + half).astype(np.float32),
        )

    def normalize_obs(self, obs: np.ndarray, in_place: bool = False) -> np.ndarray:
        """Standardised, clipped float32 observations; in_place overwrites a float32 `obs` (no copy)."""
        if not in_place:
            return np.clip((obs - self.obs_mean) / self.obs_std, -OBS_CLIP, OBS_CLIP).astype(np.float32)
        if obs.dtype != np.float32:
            raise ValueError(f"in-place normalisation needs float32 observations, got {obs.dtype}")
        obs -= self.obs_mean
        obs /= self.obs_std
        return np.clip(obs, -OBS_CLIP, OBS_CLIP, out=obs)

    def normalize_actions(self, actions: np.ndarray) -> np.ndarray:
        return ((actions - self.act_low) / (self.act_high - self.act_low) * 2 - 1).astype(np.float32)

    def denormalize_actions(self, actions: np.ndarray) -> np.ndarray:
        return ((actions + 1) / 2 * (self.act_high - self.act_low) + self.act_low).astype(np.float32)

    def normalize_obs_tensor(self, obs: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.obs_mean, device=obs.device)
        std = torch.as_tensor(self.obs_std, device=obs.device)
        return ((obs - mean) / std).clamp(-OBS_CLIP, OBS_CLIP)

    def state_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in ("obs_mean", "obs_std", "act_low", "act_high")}

    @classmethod
    def from_state_dict(cls, state: dict[str, list[float]]) -> Normalizer:
        return cls(**{k: np.asarray(v, dtype=np.float32) for k, v in state.items()})
