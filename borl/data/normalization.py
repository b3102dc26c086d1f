"""Observation and action normalisation fitted on a run's data.

Observations are standardised and clipped: with few demonstrations some dimensions barely vary (the
cube's height spreads over millimetres), so states off the demonstrated paths would normalise to huge
values and the critic would extrapolate wildly. A floor on the standard deviation and a clip bound it.
Actions are mapped from the data's per-dimension range to [-1, 1], the range the diffusion sampler clips to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

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
        centre = (actions.max(0) + actions.min(0)) / 2
        half = np.maximum((actions.max(0) - actions.min(0)) / 2, ACTION_HALF_RANGE_FLOOR)
        return cls(
            obs_mean=observations.mean(0).astype(np.float32),
            obs_std=np.maximum(observations.std(0), OBS_STD_FLOOR).astype(np.float32),
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
