"""What a critic must offer: everything training, extraction, the agent and the benchmarks call.

A new critic objective is one new file whose class satisfies `Critic`, plus its line in
borl/critics/__init__.py's CRITICS; `--set critic.kind=NAME` selects it.
"""

from __future__ import annotations

from typing import Protocol

import torch


class Critic(Protocol):
    """Q (an ensemble), V and their training step, over normalised observations and actions.

    update reads the batch keys obs, actions, rewards, next_obs, terminals and returns (see
    borl.data.replay.TransitionDataset), plus policy_actions (batch, K, act_dim) when
    `policy_samples` > 0: K actions per state drawn from the policy that collected the data.
    q and q_members also take actions (B, n, act_dim), n per observation, and answer (B, n) and
    (members, B, n): best-of-N scores its candidates so, each observation encoded once. On an image
    task the class is built with `encoder=` (borl/policies/vision.py), which it trains in front of Q and V,
    or, with `train_encoder=False` (critic.share_encoder), reads frozen as the policy trained it.
    """

    obs_dim: int
    act_dim: int
    # Actions per state the training loop must draw from the previous agent's policy (0: none).
    policy_samples: int

    @classmethod
    def samples_needed(cls, config) -> int: ...

    @classmethod
    def check_config(cls, config) -> None: ...

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def q(self, obs: torch.Tensor, actions: torch.Tensor, use_target: bool = True) -> torch.Tensor: ...

    def q_members(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...

    def v(self, obs: torch.Tensor) -> torch.Tensor: ...

    def advantage(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...

    def q_flops_per_row(self) -> int: ...

    def update_flops_per_row(self) -> int: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def to(self, device: str | torch.device) -> Critic: ...
