"""Policies, the study's policy-expressivity axis: diffusion (DDPM) and Gaussian, one interface."""

from __future__ import annotations

from typing import Protocol

import torch

from borl.policies.diffusion import DiffusionConfig, DiffusionPolicy, vp_beta_schedule
from borl.policies.gaussian import GaussianConfig, GaussianPolicy

POLICY_CLASSES = ("diffusion", "gaussian")


class Policy(Protocol):
    """What the agent, the training loop and extraction need from a policy class.

    Sampling draws no random numbers itself: the caller supplies standard-normal noise of
    `noise_shape(n)` per observation, so batched environments each keep their own generator.
    """

    obs_dim: int
    act_dim: int

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def noise_shape(self, n: int) -> tuple[int, ...]: ...

    def sample(self, obs: torch.Tensor, noise: torch.Tensor, use_ema: bool = True) -> torch.Tensor: ...

    def network_flops_per_row(self) -> int: ...

    def sample_flops_per_action(self) -> int: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def to(self, device: str | torch.device) -> Policy: ...


__all__ = [
    "POLICY_CLASSES",
    "DiffusionConfig",
    "DiffusionPolicy",
    "GaussianConfig",
    "GaussianPolicy",
    "Policy",
    "vp_beta_schedule",
]
