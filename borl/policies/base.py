"""What a policy class must offer: everything the agent, training, extraction and the benchmarks call.

A new policy class is one new file whose class satisfies `Policy`, plus its line in
borl/policies/__init__.py's POLICIES; `--policy-class NAME` (or `--set policy_class=NAME`) selects it.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import torch
from torch import nn


class Policy(Protocol):
    """A policy learner over normalised observations and actions in [-1, 1].

    update reads the batch keys obs and actions, and weights when present (AWR's per-row weights).
    Sampling draws no random numbers itself: the caller supplies standard-normal noise of
    `noise_shape(n)` per observation, so batched environments each keep their own generator.
    """

    # The RunConfig field holding this class's settings (e.g. "policy" for diffusion).
    settings_key: ClassVar[str]
    obs_dim: int
    act_dim: int
    step: int

    def __init__(
        self, obs_dim: int, act_dim: int, config, device: str = "cpu", encoder: nn.Module | None = None
    ) -> None:
        """obs_dim counts the network layout's values (borl/data/observations.py); on an image task
        `encoder` (borl/policies/vision.py, out_dim values) must come before the trunk and train with
        it. A class that takes no encoder runs on low-dim tasks only."""
        ...

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def noise_shape(self, n: int) -> tuple[int, ...]: ...

    def sample(self, obs: torch.Tensor, noise: torch.Tensor, use_ema: bool = True) -> torch.Tensor: ...

    def network_flops_per_row(self) -> int: ...

    def update_flops_per_row(self) -> int: ...

    def sample_flops_per_action(self) -> int: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def to(self, device: str | torch.device) -> Policy: ...
