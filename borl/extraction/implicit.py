"""Implicit policy extraction: sample N candidate actions from the policy, keep the best under Q.

With temperature 0 this is IDQL-style best-of-N (argmax of the target critics' min Q); with a
positive temperature it samples a candidate from softmax(Q / temperature).
"""

from __future__ import annotations

from typing import Protocol

import torch


class Critic(Protocol):
    """Anything that scores (obs, action) rows, e.g. borl.critics.iql.IQLCritic."""

    def q(self, obs: torch.Tensor, actions: torch.Tensor, use_target: bool = True) -> torch.Tensor: ...


@torch.inference_mode()
def score_candidates(candidates: torch.Tensor, obs: torch.Tensor, critic: Critic) -> torch.Tensor:
    """Target-critic Q of every candidate: (B, n, act_dim), (B, obs_dim) -> (B, n), one critic call."""
    batch, n, act_dim = candidates.shape
    obs_rows = obs.repeat_interleave(n, dim=0)
    return critic.q(obs_rows, candidates.reshape(batch * n, act_dim), use_target=True).reshape(batch, n)


def choose(q: torch.Tensor, temperature: float = 0.0, uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """Index (B,) of the chosen candidate per row of q (B, n).

    temperature 0 takes the argmax; temperature > 0 draws from softmax(q / temperature) by inverse
    CDF with `uniforms` (B,) in [0, 1), so a caller that batches several environments can draw each
    row's uniform from that environment's own generator. Without `uniforms` they come from torch's
    global generator.
    """
    if temperature == 0.0:
        return q.argmax(dim=1)
    if uniforms is None:
        uniforms = torch.rand(q.shape[0], device=q.device)
    cdf = torch.softmax(q / temperature, dim=1).cumsum(dim=1)
    index = torch.searchsorted(cdf, uniforms[:, None].to(cdf.dtype), right=True).squeeze(1)
    # cdf[:, -1] can round to slightly below 1, so a uniform near 1 could index one past the end.
    return index.clamp_(max=q.shape[1] - 1)


def best_of_n(
    candidates: torch.Tensor,
    obs: torch.Tensor,
    critic: Critic,
    temperature: float = 0.0,
    uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """One action per observation chosen among n candidates by the critic: (B, n, act_dim) -> (B, act_dim).

    Scores with `score_candidates`, chooses with `choose` (see there for temperature and uniforms).
    """
    index = choose(score_candidates(candidates, obs, critic), temperature, uniforms)
    return candidates[torch.arange(candidates.shape[0], device=candidates.device), index]
