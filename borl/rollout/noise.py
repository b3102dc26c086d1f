"""Ornstein-Uhlenbeck action noise: temporally correlated exploration around the deployed policy."""

from __future__ import annotations

import numpy as np


class OUNoise:
    """x_{t+1} = x_t - theta * x_t + sigma * N(0, I), started at zero each episode.

    Correlated noise moves the arm coherently for several steps, exploring states that independent
    per-step noise (averaged away by the arm's lag) would not reach.
    """

    def __init__(self, dim: int, sigma: float, theta: float, rng: np.random.Generator) -> None:
        self.sigma = sigma
        self.theta = theta
        self.rng = rng
        self.state = np.zeros(dim, dtype=np.float32)

    def __call__(self) -> np.ndarray:
        if self.sigma == 0.0:
            return self.state
        self.state = (
            self.state - self.theta * self.state + self.sigma * self.rng.standard_normal(len(self.state))
        ).astype(np.float32)
        return self.state
