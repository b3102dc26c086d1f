"""IQL with a calibrated conservative term (Cal-QL's, in CQL's expectation form).

Best-of-N picks, among the policy's samples, the action its critic rates highest: an unpenalised
critic's errors on those out-of-data actions are exactly what gets picked. So each update also pushes
Q down on K actions per state drawn from the policy that collected the data (the previous
iteration's agent, sampled once before training) and up on the dataset's action:

    conservative * mean over members m and samples k of [max(Q_m(s, a_k), G(s)) - Q_m(s, a_data)]

where G(s) is the transition's Monte-Carlo return-to-go: Cal-QL's calibration, which never pushes a
sampled action's Q below the value the behaviour actually achieved from s, so the penalty cannot make
the critic pessimistic about a state that succeeded. Without policy samples (iteration 0) the update
is IQL's. The term also lifts the dataset action's Q: where the sampled actions already sit at their
bound, by conservative / 2 above its TD target (0.05 at the default 0.1, against values in [0, 1]), the
same at every such state, so it moves the candidates' ranking, not the data's.
"""

from __future__ import annotations

import torch

from borl.critics.iql import IQLConfig, IQLCritic
from borl.policies.networks import training_flops_per_row


class CalQLCritic(IQLCritic):
    @classmethod
    def samples_needed(cls, config: IQLConfig) -> int:
        return config.policy_samples if config.conservative > 0 else 0

    def extra_loss(
        self, batch: dict[str, torch.Tensor], qs: torch.Tensor, obs: torch.Tensor
    ) -> tuple[torch.Tensor, dict]:
        if "policy_actions" not in batch:
            return super().extra_loss(batch, qs, obs)
        sampled = batch["policy_actions"]  # (B, K, act_dim)
        rows, k = sampled.shape[:2]
        obs = obs.unsqueeze(1).expand(rows, k, -1)
        q_sampled = self.q_values(self.q_net(torch.cat([obs, sampled], dim=-1).reshape(rows * k, -1)))
        q_sampled = q_sampled.reshape(-1, rows, k)
        calibrated = torch.maximum(q_sampled, batch["returns"].view(1, rows, 1))
        gap = calibrated.mean(dim=2) - qs
        loss = self.config.conservative * gap.mean()
        return loss, {"conservative_gap": gap.detach().mean()}

    def update_flops_per_row(self) -> int:
        """IQL's, plus the Q ensemble forward and backward on K sampled actions per row."""
        return super().update_flops_per_row() + self.policy_samples * training_flops_per_row(
            self.q_net, input_is_data=True
        )
