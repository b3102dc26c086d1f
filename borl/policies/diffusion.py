"""Diffusion policy (DDPM) trained by behaviour cloning, as in IDQL and the batch online RL study.

The noise network sees [noisy action, observation, MLP(Fourier(t))] and predicts the added noise.
Sampling is ancestral DDPM with T steps that draws no random numbers itself: the caller supplies
all the Gaussian noise (`noise_shape`), so several environments batched into one call can each use
their own generator and stay reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from borl.policies.learner import EMALearner
from borl.policies.networks import MLP, FourierFeatures, LNResNet
from borl.settings import setting


@dataclass
class DiffusionConfig:
    """Diffusion policy hyperparameters; defaults follow IDQL's DDPM with the LN-ResNet actor.

    One exception: the activation. IDQL's mish made a training step 18% and sampling 30% slower on
    this CPU (torch's CPU mish kernel is not vectorised), while SiLU, its near twin, learned the toy
    distributions of the tests equally well. activation="mish" reproduces IDQL exactly.

    On timesteps: DDPM's last step returns E[a | a_1] at the smallest noise level, which for the VP
    schedule at T=5 is large (beta_1 = 0.2, noise std 0.44), so modes of the action distribution
    closer than about +-0.8 (normalised units) are blurred towards each other. T=10 or 20 sharpens
    them at 2x or 4x the sampling cost (tests/test_diffusion.py measures this).
    """

    timesteps: int = setting(5, minimum=1, help="denoising steps T")
    width: int = setting(256, minimum=1, help="the LN-ResNet's width")
    blocks: int = setting(3, minimum=1, help="the LN-ResNet's residual blocks")
    expansion: int = setting(4, minimum=1, help="each block's hidden width over its width (IDQL: 4)")
    dropout: float = setting(0.1, minimum=0, help="dropout in each block")
    time_dim: int = setting(64, minimum=1, help="Fourier features of the timestep")
    time_hidden: int = setting(128, minimum=1, help="the timestep embedding's width")
    activation: str = setting("silu", help="silu, or mish (IDQL's)")
    lr: float = setting(3e-4, positive=True, help="Adam's learning rate")
    ema_decay: float = setting(0.999, minimum=0, help="decay of the weights' EMA, which samples")
    clip_sample: bool = setting(True, help="clip each denoising step's action to [-1, 1]")


def vp_beta_schedule(timesteps: int) -> torch.Tensor:
    """IDQL's variance-preserving schedule (beta_min 0.1, beta_max 10), float64, shape (T,)."""
    t = torch.arange(1, timesteps + 1, dtype=torch.float64)
    b_min, b_max = 0.1, 10.0
    alpha = torch.exp(-b_min / timesteps - 0.5 * (b_max - b_min) * (2 * t - 1) / timesteps**2)
    return 1 - alpha


class NoiseNet(nn.Module):
    """Predicts the noise in a noisy action given the observation and the (integer) timestep.

    With an `encoder` (an image task's, borl/policies/vision.py) the trunk reads its features: `encode`
    them once per observation, then call the network at every denoising step.
    """

    def __init__(
        self, obs_dim: int, act_dim: int, config: DiffusionConfig, encoder: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.time_features = FourierFeatures(config.time_dim)
        self.time_mlp = MLP(config.time_dim, (config.time_hidden,), config.time_hidden, config.activation)
        self.encoder = encoder
        self.net = LNResNet(
            act_dim + (obs_dim if encoder is None else encoder.out_dim) + config.time_hidden,
            act_dim,
            config.width,
            config.blocks,
            config.expansion,
            config.dropout,
            config.activation,
        )

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """What the trunk reads of obs (N, obs_dim): obs itself, or the encoder's features."""
        return obs if self.encoder is None else self.encoder(obs)

    def forward(self, obs: torch.Tensor, noisy_actions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """obs (N, encoded obs), noisy_actions (N, act_dim), t (N,) or (1,) float -> noise (N, act_dim)."""
        cond = self.time_mlp(self.time_features(t[:, None]))
        cond = cond.expand(noisy_actions.shape[0], -1)
        return self.net(torch.cat([noisy_actions, obs, cond], dim=-1))


class DiffusionPolicy(EMALearner):
    """A DDPM policy learner: noise network, its Adam optimizer and an EMA copy used for sampling."""

    settings_key = "policy"
    # The first layer (the time MLP's) reads learned Fourier features, which need its input gradient.
    input_is_data = False

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        config: DiffusionConfig,
        device: str = "cpu",
        encoder: nn.Module | None = None,
    ) -> None:
        model = NoiseNet(obs_dim, act_dim, config, encoder)
        super().__init__(model.to(device), config.lr, config.ema_decay)
        self.obs_dim, self.act_dim, self.config = obs_dim, act_dim, config

        betas = vp_beta_schedule(config.timesteps)
        alphas = 1 - betas
        alpha_bars = torch.cumprod(alphas, 0)
        # Per-step constants of the sampler as Python floats: no tensor indexing in the loop.
        self._c_eps = ((1 - alphas) / (1 - alpha_bars).sqrt()).tolist()
        self._c_scale = (1 / alphas.sqrt()).tolist()
        self._sigma = betas.sqrt().tolist()
        self.alpha_bars = alpha_bars  # (T,) float64 on the CPU: noise level t keeps sqrt(alpha_bars[t]) of a
        self._move_schedule(torch.device(device))

    def _move_schedule(self, device: torch.device) -> None:
        """The tensors that training and sampling index, on `device`."""
        self._sqrt_ab = self.alpha_bars.sqrt().to(device, torch.float32)
        self._sqrt_1m_ab = (1 - self.alpha_bars).sqrt().to(device, torch.float32)
        self._times = torch.arange(self.config.timesteps, dtype=torch.float32, device=device)

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Denoising loss: squared error of the predicted noise at a uniformly random timestep.

        Mean over action dimensions, then the (optionally `weights`-weighted, as given) mean over rows.
        """
        t = torch.randint(0, self.config.timesteps, (actions.shape[0],), device=actions.device)
        noise = torch.randn_like(actions)
        noisy = self._sqrt_ab[t, None] * actions + self._sqrt_1m_ab[t, None] * noise
        per_row = (self.model(self.model.encode(obs), noisy, t.float()) - noise).square().mean(dim=-1)
        if weights is not None:
            per_row = per_row * weights
        return per_row.mean()

    def noise_shape(self, n: int) -> tuple[int, int, int]:
        """Shape of the standard-normal noise that `sample` needs for n samples of one observation.

        (n, T, act_dim): the initial x_T, then one draw for each of the T - 1 steps that add noise
        (DDPM's last step, t = 0, adds none).
        """
        return (n, self.config.timesteps, self.act_dim)

    @torch.inference_mode()
    def sample(self, obs: torch.Tensor, noise: torch.Tensor, use_ema: bool = True) -> torch.Tensor:
        """n actions per observation: obs (B, obs_dim), noise (B, n, T, act_dim) -> (B, n, act_dim).

        Deterministic given `noise`. All B * n rows go through the network at once per step.
        """
        batch, n = self._check_sample_inputs(obs, noise)
        net = self.ema if use_ema else self.model
        was_training = net.training
        net.eval()
        obs_rows = net.encode(obs).repeat_interleave(n, dim=0)
        noise = noise.reshape(batch * n, self.config.timesteps, self.act_dim)
        x = noise[:, 0]
        for i, t in enumerate(reversed(range(self.config.timesteps))):
            eps = net(obs_rows, x, self._times[t : t + 1])
            x = (x - self._c_eps[t] * eps) * self._c_scale[t]
            if t > 0:
                x = x.add_(noise[:, i + 1], alpha=self._sigma[t])
            if self.config.clip_sample:
                x = x.clamp_(-1.0, 1.0)
        net.train(was_training)
        return x.clamp_(-1.0, 1.0).reshape(batch, n, self.act_dim)

    def sample_flops_per_action(self) -> int:
        """FLOPs of drawing one action: T noise-network forwards."""
        return self.config.timesteps * self.network_flops_per_row()

    def to(self, device: str | torch.device) -> DiffusionPolicy:
        """Moves networks, optimizer state and schedule to `device`; returns self."""
        super().to(device)
        self._move_schedule(torch.device(device))
        return self
