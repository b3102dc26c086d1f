"""What a task is: its sizes, its environment and its scripted expert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from borl.data.observations import ObservationSpec
from borl.errors import BorlError


class TaskEnv(Protocol):
    """A single environment with gymnasium's step convention and flat float32 observations (an image
    task's pack its cameras' pictures after the low-dim keys: borl/data/observations.py)."""

    def reset(self, seed: int) -> np.ndarray: ...

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Returns (obs, reward, terminated, truncated, info); info["success"] is a bool."""
        ...

    def sim_state(self) -> np.ndarray:
        """The simulator's flattened state (robomimic's "states" row)."""
        ...

    def render_state(self, state: np.ndarray, size: int) -> np.ndarray:
        """An RGB frame (size, size, 3) uint8 of a `sim_state` (for videos); ends any episode."""
        ...

    def close(self) -> None: ...


class Expert(Protocol):
    """A scripted controller that acts from the environment's privileged state."""

    def act(self, obs: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class TaskSpec:
    """A task's fixed facts.

    obs_keys lists (robomimic key, size); flat observations concatenate them in this order.
    default_demos is the D0 size at which the recipe's pi0 succeeds 30-65% of the time.
    fast_controller steps a robosuite task through borl's compiled copy of robosuite's controller
    (borl/envs/fast_osc.py; the same states bit for bit) instead of robosuite's Python.
    """

    name: str
    description: str
    obs_keys: tuple[tuple[str, int], ...]
    act_dim: int
    horizon: int
    default_demos: int
    demo_noise: float
    env_name: str
    fast_controller: bool = False

    @property
    def obs_dim(self) -> int:
        """The low-dim keys' values (the pictures come on top: `observation`)."""
        return sum(size for _, size in self.obs_keys)

    # An image task's cameras, whose image_size^2 RGB pictures it observes besides obs_keys (robomimic's
    # keys are the camera's name + "_image").
    cameras: tuple[str, ...] = ()
    image_size: int = 84

    @property
    def observation(self) -> ObservationSpec:
        return ObservationSpec(self.obs_dim, self.cameras, self.image_size)


def checked_action(spec: TaskSpec, action: np.ndarray) -> np.ndarray:
    """The action as float64 clipped to [-1, 1]; a wrong shape or a non-finite value is a BorlError."""
    action = np.asarray(action, dtype=np.float64)
    if action.shape != (spec.act_dim,):
        raise BorlError(
            f"action for task '{spec.name}' must have shape {(spec.act_dim,)}, got {action.shape}"
        )
    if not np.all(np.isfinite(action)):
        raise BorlError(f"non-finite action for task '{spec.name}': {action.tolist()}")
    return np.clip(action, -1.0, 1.0)
