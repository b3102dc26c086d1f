"""IQL with a classification value loss: each Q network outputs a histogram over the returns' range,
trained by cross-entropy against HL-Gauss targets (Farebrother et al. 2024, "Stop Regressing").

The TD target y (IQL's, with the Monte-Carlo bound when set) becomes the probabilities that a Gaussian
centred at y, with std `bin_sigma` bin widths, puts in each of `bins` equal bins over q_clip's range
(the mass outside folded into the end bins); Q is the histogram's mean. A cross-entropy's gradient does
not grow with the error, so the rare large targets of a sparse reward (a success 1, everything near it
about 0) do not dominate the update the way a squared error's do, and the Gaussian's width spreads each
target over neighbouring values, which smooths the ranking of nearby actions.
"""

from __future__ import annotations

import torch

from borl.critics.iql import IQLConfig, IQLCritic
from borl.errors import BorlError


class HLGaussCritic(IQLCritic):
    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        config: IQLConfig,
        device: str = "cpu",
        encoder: torch.nn.Module | None = None,
        train_encoder: bool = True,
    ) -> None:
        self.check_config(config)
        super().__init__(obs_dim, act_dim, config, device, encoder, train_encoder)
        low, high = config.q_clip
        self.edges = torch.linspace(low, high, config.bins + 1, device=device)
        self.centres = (self.edges[:-1] + self.edges[1:]) / 2
        self.sigma = config.bin_sigma * (high - low) / config.bins

    @classmethod
    def check_config(cls, config: IQLConfig) -> None:
        if config.q_clip is None:
            raise BorlError("critic.kind=hlgauss needs critic.q_clip: the histogram spans its range")

    @classmethod
    def q_outputs(cls, config: IQLConfig) -> int:
        return config.bins

    def q_values(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.softmax(dim=-1) @ self.centres

    def target_probabilities(self, target: torch.Tensor) -> torch.Tensor:
        """HL-Gauss histogram (B, bins) of targets (B,): the Gaussian's mass in each bin, the tails in
        the end bins, so every row sums to 1."""
        cdf = torch.special.ndtr((self.edges - target.unsqueeze(-1)) / self.sigma)
        cdf[:, 0], cdf[:, -1] = 0.0, 1.0
        return cdf[:, 1:] - cdf[:, :-1]

    def q_loss(self, outputs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = self.target_probabilities(target)
        log_p = outputs.log_softmax(dim=-1)
        loss = -(probabilities * log_p).sum(dim=-1).mean()
        return loss, log_p.exp() @ self.centres

    def to(self, device: str | torch.device) -> HLGaussCritic:
        super().to(device)
        self.edges, self.centres = self.edges.to(device), self.centres.to(device)
        return self
