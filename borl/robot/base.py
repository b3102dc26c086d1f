"""What borl needs from a robot arm: a small class a user implements once for their hardware."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from borl.errors import BorlError


@dataclass(frozen=True)
class RobotSpec:
    """A robot's fixed facts: its observation keys and sizes (flat observations concatenate them in
    this order, as the task's do), its action size, its control rate and its longest episode."""

    name: str
    obs_keys: tuple[tuple[str, int], ...]
    act_dim: int
    control_hz: float
    horizon: int

    @property
    def obs_dim(self) -> int:
        return sum(size for _, size in self.obs_keys)

    def flatten(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One flat float32 observation from a map key -> array; a missing key or size is a BorlError."""
        parts = []
        for key, size in self.obs_keys:
            if key not in obs:
                raise BorlError(f"observation has no key '{key}' (the spec's keys: {self.key_names()})")
            value = np.asarray(obs[key], dtype=np.float32).reshape(-1)
            if value.shape != (size,):
                raise BorlError(f"observation '{key}' has {value.size} values, expected {size}")
            parts.append(value)
        return np.concatenate(parts)

    def split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """The inverse of `flatten`."""
        out, start = {}, 0
        for key, size in self.obs_keys:
            out[key] = np.asarray(flat[start : start + size], dtype=np.float32)
            start += size
        return out

    def key_names(self) -> str:
        return ", ".join(key for key, _ in self.obs_keys)


class Robot(ABC):
    """An arm under borl's control loop (borl/robot/drive.py), one episode at a time.

    The loop calls `reset` (the operator puts the scene back; returns the first observation), then, at
    `spec.control_hz`, `send_action` and `observe` until `episode_over` or the spec's horizon, and at
    the end asks `success` for the episode's label (an operator's judgement, or a detector's).
    `connect` and `close` bracket a session.
    """

    spec: RobotSpec

    def connect(self) -> None:
        """Open the connection to the hardware (default: nothing to do)."""
        return None

    @abstractmethod
    def reset(self) -> dict[str, np.ndarray]:
        """Bring the scene to a start state and return the first observation."""

    @abstractmethod
    def observe(self) -> dict[str, np.ndarray]:
        """The current observation, a map key -> array with the spec's keys and sizes."""

    @abstractmethod
    def send_action(self, action: np.ndarray) -> None:
        """Command one action of size spec.act_dim, in [-1, 1]."""

    def episode_over(self) -> bool:
        """Whether the episode has ended before the horizon (task done, operator stop); default never."""
        return False

    @abstractmethod
    def success(self) -> bool:
        """The finished episode's success label."""

    def close(self) -> None:
        """Release the hardware (default: nothing to do)."""
        return None
