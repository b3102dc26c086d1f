"""One episode of experience and where it came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Lineage:
    """Where an episode came from, so every transition in a run can be traced to the policy that made it.

    source: "demo" (D0), "rollout" (autonomous collection), "robot" (ingested recording) or "import".
    iteration: the loop iteration whose batch holds it (0 for D0).
    index: the episode's index within its batch; with (source, iteration) it names the episode uniquely.
    checkpoint: the checkpoint that acted, e.g. "iter_2"; None for demonstrations.
    seed: the seed that made the episode (environment reset and action sampling).
    noise: the OU noise sigma used while acting (0.0 for none).
    recording: for an episode recorded on a robot, its recording's unique id (what makes ingesting the
    same recording twice add nothing); None otherwise.
    """

    source: str
    iteration: int
    index: int
    checkpoint: str | None = None
    seed: int | None = None
    noise: float = 0.0
    recording: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Episode:
    """A trajectory of T transitions, with flat float32 observations in the task's key order.

    observations has T+1 rows: the last one is the observation after the final action.
    terminated is True when the last transition ended in a terminal state (success with
    terminate-on-success): the critic must not bootstrap past it. A time-out is not terminal.
    states optionally holds the simulator's flattened state before each action (robomimic's "states").
    images holds an image task's pictures, (T+1, cameras, H, W, 3) uint8, row for row with observations
    (which then hold the low-dim keys only: borl/data/observations.py).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool
    success: bool
    lineage: Lineage
    states: np.ndarray | None = field(default=None, repr=False)
    images: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        t = len(self.actions)
        if self.observations.shape[0] != t + 1 or self.rewards.shape != (t,):
            raise ValueError(
                f"episode shapes disagree: {self.observations.shape[0]} observations, "
                f"{t} actions, {self.rewards.shape[0]} rewards (need T+1, T, T)"
            )
        if self.images is not None and (self.images.shape[0] != t + 1 or self.images.dtype != np.uint8):
            shape = self.images.shape
            raise ValueError(f"episode images must be (T+1={t + 1}, C, H, W, 3) uint8, got {shape}")

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def counts_as_success(self) -> bool:
        """Reached the goal, or is a demonstration (D0 counts as successful whatever its flag says)."""
        return self.success or self.lineage.source == "demo"
