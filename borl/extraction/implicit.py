"""Implicit policy extraction: sample N candidate actions from the policy, keep the best under Q.

With temperature 0 this is IDQL-style best-of-N (argmax of the target critics' min Q); with a
positive temperature it samples a candidate from softmax(Q / temperature). Safe selection
(`safe_choose`) keeps the policy's own first sample unless the critic ensemble agrees that another
candidate is better by more than its disagreement allows.
"""

from __future__ import annotations

from typing import Protocol

import torch


class Critic(Protocol):
    """Anything that scores (obs, action) rows, e.g. borl.critics.iql.IQLCritic; actions (B, n, act_dim)
    score n actions per observation (B, n), the observation read once."""

    def q(self, obs: torch.Tensor, actions: torch.Tensor, use_target: bool = True) -> torch.Tensor: ...

    def q_members(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...


@torch.inference_mode()
def score_candidates(candidates: torch.Tensor, obs: torch.Tensor, critic: Critic) -> torch.Tensor:
    """Target-critic Q of every candidate: (B, n, act_dim), (B, obs_dim) -> (B, n), one critic call."""
    return critic.q(obs, candidates, use_target=True)


@torch.inference_mode()
def score_members(candidates: torch.Tensor, obs: torch.Tensor, critic: Critic) -> torch.Tensor:
    """Each target Q network's value of every candidate: (B, n, act_dim), (B, obs_dim) -> (K, B, n)."""
    return critic.q_members(obs, candidates)


def safe_choose(members: torch.Tensor, k: float, margin: float = 0.0) -> torch.Tensor:
    """Index (B,) of the chosen candidate from the ensemble's values (K, B, n), candidate 0 being the
    policy's own first sample.

    Each candidate's advantage over candidate 0 is measured per member (the members' shared errors
    cancel in the difference); its lower confidence bound is the members' mean minus k times their
    standard deviation. The candidate with the highest bound acts if that bound exceeds `margin`;
    otherwise the policy's own sample does. k = 0 with margin 0 is best-of-N under the mean Q.
    """
    if members.shape[0] < 2:
        raise ValueError("safe selection needs an ensemble of at least 2 Q networks")
    advantage = members - members[..., :1]
    bound = advantage.mean(dim=0) - k * advantage.std(dim=0)
    best = bound.argmax(dim=1)
    moves = bound.gather(1, best[:, None]).squeeze(1) > margin
    return torch.where(moves, best, torch.zeros_like(best))


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


def choose_index(
    candidates: torch.Tensor,
    obs: torch.Tensor,
    critic: Critic,
    temperature: float = 0.0,
    uniforms: torch.Tensor | None = None,
    safety_k: float | None = None,
    safety_margin: float = 0.0,
) -> torch.Tensor:
    """Index (B,) of the candidate (B, n, act_dim) that acts: `safe_choose` when safety_k is set,
    else `choose` on the ensemble's min Q (see there for temperature and uniforms)."""
    if safety_k is not None:
        return safe_choose(score_members(candidates, obs, critic), safety_k, safety_margin)
    return choose(score_candidates(candidates, obs, critic), temperature, uniforms)


def best_of_n(
    candidates: torch.Tensor,
    obs: torch.Tensor,
    critic: Critic,
    temperature: float = 0.0,
    uniforms: torch.Tensor | None = None,
    safety_k: float | None = None,
    safety_margin: float = 0.0,
) -> torch.Tensor:
    """One action per observation chosen among n candidates by the critic: (B, n, act_dim) -> (B, act_dim)."""
    index = choose_index(candidates, obs, critic, temperature, uniforms, safety_k, safety_margin)
    return candidates[torch.arange(candidates.shape[0], device=candidates.device), index]


@torch.inference_mode()
def selection_stats(candidates: torch.Tensor, obs: torch.Tensor, critic: Critic, index: torch.Tensor) -> dict:
    """How selection used the critic on a batch of states: the share of states where the chosen
    candidate is not the policy's first sample, the mean min-Q margin of the chosen over the first,
    and the mean within-state standard deviation of the candidates' min Q."""
    q = score_candidates(candidates, obs, critic)
    chosen = q.gather(1, index[:, None]).squeeze(1)
    return {
        "moved_from_first": float((index != 0).float().mean()),
        "q_margin": float((chosen - q[:, 0]).mean()),
        "q_spread": float(q.std(dim=1).mean()),
    }
