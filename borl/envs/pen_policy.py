"""The network of pen's feedback expert: a small MLP from the 45-dim observation to the mean of 24 joint
targets, with its observation normaliser and a learned exploration std (trained by scripts/pen_rl.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from borl.errors import BorlError


class PenPolicyNet(nn.Module):
    """Normalised observation -> tanh MLP -> action mean in [-1, 1]; `log_std` is the exploration noise
    PPO trained with (state-independent, per joint)."""

    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.register_buffer("obs_mean", torch.zeros(45))
        self.register_buffer("obs_std", torch.ones(45))
        self.net = nn.Sequential(
            nn.Linear(45, width),
            nn.Tanh(),
            nn.Linear(width, width),
            nn.Tanh(),
            nn.Linear(width, 24),
            nn.Tanh(),
        )
        self.log_std = nn.Parameter(torch.zeros(24))

    def fit_normaliser(self, observations: np.ndarray) -> None:
        """Set the normaliser to the observations' mean and std (std floored so constants stay finite)."""
        self.obs_mean.copy_(torch.as_tensor(observations.mean(0)))
        self.obs_std.copy_(torch.as_tensor(observations.std(0)).clamp_min(1e-2))

    def normalise(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs - self.obs_mean) / self.obs_std).clamp(-10, 10)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalise(obs))


WEIGHTS = Path(__file__).with_name("pen_expert.pt")


class PenPolicyExpert:
    """pen's default expert: the feedback policy trained by scripts/pen_rl.py (weights shipped in the
    package), acting with its mean action plus Gaussian noise of std `noise` from rng on every joint.

    Unlike the planner (borl/envs/pen_expert.py) it is a smooth function of the observation that PPO
    trained under its own exploration noise, so its demonstrations can be imitated (docs/tasks.md).
    env is unused (experts share one factory signature): the policy acts on the observation alone.
    """

    def __init__(self, env: object, rng: np.random.Generator, noise: float, weights: Path = WEIGHTS) -> None:
        if not weights.is_file():
            raise BorlError(f"pen expert weights not found at {weights} (scripts/pen_rl.py trains them)")
        self.rng = rng
        self.noise = noise
        self.net = PenPolicyNet()
        self.net.load_state_dict(torch.load(weights, weights_only=True))
        self.net.eval()

    def act(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            mean = self.net(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
        noisy = mean + self.noise * self.rng.standard_normal(mean.shape)
        return np.clip(noisy, -1.0, 1.0).astype(np.float32)
