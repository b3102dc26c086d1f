"""A grid point of a study: one run, and where its directory and log live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Point:
    """One run of the grid."""

    task: str
    preset: str
    rollouts: int
    ou_sigma: float
    seed: int

    @property
    def setting(self) -> str:
        return f"M{self.rollouts}_ou{self.ou_sigma:g}"

    @property
    def relative(self) -> Path:
        """The run directory, relative to the study directory."""
        return Path("runs") / self.task / self.preset / self.setting / f"seed{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.task}/{self.preset}/{self.setting}/seed{self.seed}"

    @property
    def log_name(self) -> str:
        return f"{self.task}_{self.preset}_{self.setting}_seed{self.seed}"
