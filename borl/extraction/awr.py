"""Explicit policy extraction by advantage-weighted regression (AWR), as in IQL.

The policy's imitation loss weights each dataset (obs, action) by exp(beta * (Q - V)), clipped at
max_weight: actions the critic rates above the state's value are imitated more. At rollout the policy
then acts with one plain sample; the critic is used only during training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

Update = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


class AdvantageCritic(Protocol):
    """Anything that scores dataset actions against the state's value, e.g. IQLCritic."""

    def advantage(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...


def awr_weights(advantages: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    """exp(beta * advantages) clipped at max_weight, element-wise."""
    return torch.exp(beta * advantages).clamp(max=max_weight)


def weighted_update(update: Update, critic: AdvantageCritic, beta: float, max_weight: float) -> Update:
    """A policy update step that first sets batch["weights"] to the AWR weights under `critic`.

    The critic must already be trained (train.py fits it before the policy). The info gains the
    batch's mean weight, a quick check that beta suits the advantages' scale.
    """

    def step(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        weights = awr_weights(critic.advantage(batch["obs"], batch["actions"]), beta, max_weight)
        info = update({**batch, "weights": weights})
        return {**info, "awr_weight": weights.mean()}

    return step
