"""Gaussian policy: the unimodal baseline of the study's policy-expressivity axis.

An LN-ResNet (the same trunk as the diffusion policy's noise network, so that the two classes differ
in the distribution they can represent, not in the network) maps the observation to the mean and the
state-dependent log standard deviation of a diagonal Gaussian over normalised actions. It learns by
(optionally weighted) maximum likelihood. Like the diffusion policy it draws no random numbers when
sampling: the caller supplies the standard-normal noise (`noise_shape`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from borl.policies.learner import EMALearner
from borl.policies.networks import LNResNet
from borl.settings import setting


@dataclass
class GaussianConfig:
    """Gaussian policy hyperparameters.

    The trunk defaults match the diffusion policy's CPU defaults (width 256, 3 blocks, no expansion,
    dropout 0.1, SiLU). log_std is clamped to [log_std_min, log_std_max]: in normalised action units
    exp(-5) = 0.007 is finer than any action matters, and exp(2) = 7.4 already covers [-1, 1] uniformly.
    """

    width: int = setting(256, minimum=1, help="the LN-ResNet's width")
    blocks: int = setting(3, minimum=1, help="the LN-ResNet's residual blocks")
    expansion: int = setting(1, minimum=1, help="each block's hidden width over its width")
    dropout: float = setting(0.1, minimum=0, help="dropout in each block")
    activation: str = setting("silu", help="silu or mish")
    lr: float = setting(3e-4, positive=True, help="Adam's learning rate")
    ema_decay: float = setting(0.999, minimum=0, help="decay of the weights' EMA, which samples")
    log_std_min: float = setting(-5.0, help="the log-std's lower clamp (normalised action units)")
    log_std_max: float = setting(2.0, help="the log-std's upper clamp")


class GaussianPolicy(EMALearner):
    """A diagonal-Gaussian policy learner: network, its Adam optimizer and an EMA copy for sampling."""

    settings_key = "gaussian"
    input_is_data = True  # the network reads the observation alone

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        config: GaussianConfig,
        device: str = "cpu",
        encoder: nn.Module | None = None,
    ) -> None:
        model: nn.Module = LNResNet(
            obs_dim if encoder is None else encoder.out_dim,
            2 * act_dim,
            config.width,
            config.blocks,
            config.expansion,
            config.dropout,
            config.activation,
        )
        if encoder is not None:  # an image task's encoder in front of the trunk (borl/policies/vision.py)
            model = nn.Sequential(encoder, model)
        super().__init__(model.to(device), config.lr, config.ema_decay)
        self.obs_dim, self.act_dim, self.config = obs_dim, act_dim, config

    def distribution(self, obs: torch.Tensor, use_ema: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clamped log-std, each (B, act_dim), of the action distribution at obs (B, obs_dim)."""
        net = self.ema if use_ema else self.model
        mean, log_std = net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(self.config.log_std_min, self.config.log_std_max)

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Negative log-likelihood of the actions, summed over action dimensions.

        Then the (optionally `weights`-weighted, as given) mean over rows.
        """
        mean, log_std = self.distribution(obs)
        z = (actions - mean) * torch.exp(-log_std)
        per_row = (0.5 * z.square() + log_std).sum(dim=-1) + 0.5 * self.act_dim * math.log(2 * math.pi)
        if weights is not None:
            per_row = per_row * weights
        return per_row.mean()

    def noise_shape(self, n: int) -> tuple[int, int]:
        """Shape of the standard-normal noise that `sample` needs for n samples of one observation."""
        return (n, self.act_dim)

    @torch.inference_mode()
    def sample(self, obs: torch.Tensor, noise: torch.Tensor, use_ema: bool = True) -> torch.Tensor:
        """n actions per observation: obs (B, obs_dim), noise (B, n, act_dim) -> (B, n, act_dim).

        mean + std * noise, clipped to [-1, 1]; deterministic given `noise`.
        """
        self._check_sample_inputs(obs, noise)
        net = self.ema if use_ema else self.model
        was_training = net.training
        net.eval()
        mean, log_std = self.distribution(obs, use_ema)
        net.train(was_training)
        return (mean[:, None] + log_std.exp()[:, None] * noise).clamp_(-1.0, 1.0)

    def sample_flops_per_action(self) -> int:
        """FLOPs of drawing one action: one network forward (the noise costs no matmul)."""
        return self.network_flops_per_row()
