"""What borl needs from a robot arm: a small class a user implements once for their hardware."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from borl.errors import BorlError

if TYPE_CHECKING:
    from borl.envs.base import TaskSpec


@dataclass(frozen=True)
class RobotSpec:
    """A robot's fixed facts: its observation keys and sizes (flat observations concatenate them in
    this order, as the task's do), its action size, its control rate and its longest episode.

    An image task's robot also sends one (image_size, image_size, 3) uint8 picture per camera, under
    robomimic's key `<camera>_image`; flat observations carry them after the low-dim keys (the packed
    layout of borl/data/observations.py)."""

    name: str
    obs_keys: tuple[tuple[str, int], ...]
    act_dim: int
    control_hz: float
    horizon: int
    cameras: tuple[str, ...] = ()
    image_size: int = 84

    @classmethod
    def of_task(cls, task: TaskSpec, name: str, act_dim: int, control_hz: float, horizon: int) -> RobotSpec:
        """A robot observing what `task` observes (its low-dim keys and cameras)."""
        return cls(name, task.obs_keys, act_dim, control_hz, horizon, task.cameras, task.image_size)

    @property
    def picture_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, 3)

    @property
    def obs_dim(self) -> int:
        pixels = len(self.cameras) * int(np.prod(self.picture_shape))
        return sum(size for _, size in self.obs_keys) + pixels

    def flatten(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One flat float32 observation from a map key -> array; a missing key or size is a BorlError."""
        parts = []
        for key, size in self.obs_keys:
            value = np.asarray(self._value(obs, key), dtype=np.float32).reshape(-1)
            if value.shape != (size,):
                raise BorlError(f"observation '{key}' has {value.size} values, expected {size}")
            parts.append(value)
        for key in self.picture_keys():
            picture = np.asarray(self._value(obs, key))
            if picture.shape != self.picture_shape or picture.dtype != np.uint8:
                raise BorlError(
                    f"picture '{key}' is {picture.dtype} {picture.shape}, expected uint8 {self.picture_shape}"
                )
            parts.append(picture.reshape(-1).astype(np.float32))
        return np.concatenate(parts)

    def _value(self, obs: dict[str, np.ndarray], key: str) -> np.ndarray:
        if key not in obs:
            raise BorlError(f"observation has no key '{key}' (the spec's keys: {self.key_names()})")
        return obs[key]

    def split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """The inverse of `flatten` (pictures as uint8 arrays)."""
        out, start = {}, 0
        for key, size in self.obs_keys:
            out[key] = np.asarray(flat[start : start + size], dtype=np.float32)
            start += size
        pixels = int(np.prod(self.picture_shape))
        for key in self.picture_keys():
            picture = np.asarray(flat[start : start + pixels]).reshape(self.picture_shape)
            out[key] = np.clip(np.rint(picture), 0, 255).astype(np.uint8)
            start += pixels
        return out

    def picture_keys(self) -> list[str]:
        return [f"{camera}_image" for camera in self.cameras]

    def key_names(self) -> str:
        return ", ".join([key for key, _ in self.obs_keys] + self.picture_keys())


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
