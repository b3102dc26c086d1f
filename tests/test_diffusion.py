"""The diffusion policy: shapes, learning, multimodality (the shared contract: tests/test_contracts.py)."""

import math

import pytest
import torch
from torch import nn

from borl.policies import DiffusionConfig, DiffusionPolicy, vp_beta_schedule
from borl.policies.networks import EnsembleMLP

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = DiffusionConfig(width=64, blocks=2, expansion=2, time_dim=16, time_hidden=32, lr=1e-3)


def make_policy(
    obs_dim: int = 3, act_dim: int = 2, config: DiffusionConfig = SMALL, device: str = "cpu"
) -> DiffusionPolicy:
    torch.manual_seed(0)
    return DiffusionPolicy(obs_dim, act_dim, config, device=device)


def bimodal_batch(
    n: int, obs_dim: int = 3, mode: float = 0.9, device: str = "cpu"
) -> dict[str, torch.Tensor]:
    """Constant observation; action dim 0 is +-mode with equal probability, dim 1 is 0."""
    actions = torch.zeros(n, 2)
    actions[:, 0] = torch.where(torch.rand(n) < 0.5, -mode, mode)
    return {"obs": torch.ones(n, obs_dim, device=device), "actions": actions.to(device)}


class ExactTwoModeDenoiser(nn.Module):
    """The optimal noise prediction when the data are +-mode with equal probability (1-D actions)."""

    def __init__(self, alpha_bars: torch.Tensor, mode: float) -> None:
        super().__init__()
        self.alpha_bars, self.mode = alpha_bars, mode

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return obs  # a low-dim observation, read as it is (the noise network's encode)

    def forward(self, obs: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bars[int(t.item())]
        posterior_mean = self.mode * torch.tanh(self.mode * ab.sqrt() * x / (1 - ab))
        return (x - ab.sqrt() * posterior_mean) / (1 - ab).sqrt()


def test_vp_schedule_ends_near_pure_noise():
    betas = vp_beta_schedule(5)
    alpha_bar = torch.cumprod(1 - betas, 0)
    assert betas.shape == (5,) and bool((betas > 0).all() and (betas < 1).all())
    assert alpha_bar[-1] < 0.01 and alpha_bar[0] > 0.75


def test_shapes_and_clipping():
    policy = make_policy(obs_dim=4, act_dim=3)
    assert policy.noise_shape(7) == (7, 5, 3)
    noise = 3 * torch.randn(2, *policy.noise_shape(7))
    actions = policy.sample(torch.randn(2, 4), noise)
    assert actions.shape == (2, 7, 3) and actions.dtype == torch.float32
    assert actions.abs().max() <= 1.0
    assert policy.sample(torch.randn(2, 4), noise, use_ema=False).shape == (2, 7, 3)
    assert policy.model.training, "sampling must restore the training network's mode"
    with pytest.raises(ValueError):
        policy.sample(torch.randn(2, 4), torch.randn(2, 7, 6, 3))


def test_loss_goes_down_and_weights_are_used_as_given(device):
    policy = make_policy(device=device)
    batch = bimodal_batch(256, device=device)
    losses = torch.stack([policy.update(batch)["policy_loss"] for _ in range(150)])
    assert losses[-20:].mean() < 0.6 * losses[:20].mean()
    assert policy.loss(batch["obs"], batch["actions"], torch.zeros(256, device=device)) == 0.0


def test_sampler_with_the_exact_denoiser_reproduces_two_modes():
    """Checks the sampler's arithmetic against theory, with no training involved.

    With the optimal denoiser, DDPM's last step returns E[a | a_1], the posterior mean at the
    smallest noise level. With IDQL's VP schedule at T=5 that level is large (beta_1 = 0.2, noise
    std 0.44), which blurs modes closer than about +-0.8 apart; with T=20 it is small and the
    samples sit on the modes.
    """
    for timesteps, mode, min_on_modes in [(20, 0.5, 0.95), (5, 0.9, 0.7)]:
        policy = make_policy(obs_dim=1, act_dim=1, config=DiffusionConfig(width=8, timesteps=timesteps))
        policy.ema = ExactTwoModeDenoiser(policy.alpha_bars, mode)
        torch.manual_seed(0)
        a = policy.sample(torch.zeros(1, 1), torch.randn(1, *policy.noise_shape(10000)))[0, :, 0]
        on_modes = ((a.abs() - mode).abs() < 0.15).float().mean().item()
        assert on_modes > min_on_modes, (timesteps, on_modes)
        assert abs((a > 0).float().mean().item() - 0.5) < 0.03


def test_learns_two_modes_that_a_gaussian_cannot(device):
    policy = make_policy(device=device)
    for _ in range(1200):
        policy.update(bimodal_batch(256, device=device))
    policy.to("cpu")

    torch.manual_seed(1)
    samples = policy.sample(torch.ones(1, 3), torch.randn(1, *policy.noise_shape(2000)))[0]
    a = samples[:, 0]
    upper = (a > 0.5).float().mean().item()
    lower = (a < -0.5).float().mean().item()
    middle = (a.abs() < 0.25).float().mean().item()
    assert 0.3 < upper < 0.7 and 0.3 < lower < 0.7, (upper, lower)
    assert middle < 0.1, middle
    assert samples[:, 1].abs().mean() < 0.1

    # The maximum-likelihood Gaussian of the same data is centred between the modes, where there is
    # no data, and puts much more of its mass there.
    data = bimodal_batch(20000)["actions"][:, 0]
    mean, std = data.mean().item(), data.std().item()
    gaussian_middle = (
        math.erf((0.25 - mean) / (std * math.sqrt(2))) - math.erf((-0.25 - mean) / (std * math.sqrt(2)))
    ) / 2
    assert abs(mean) < 0.05
    assert gaussian_middle > 0.2 and gaussian_middle > 3 * middle, (gaussian_middle, middle)


def test_ensemble_mlp_members_are_independent():
    torch.manual_seed(0)
    net = EnsembleMLP(3, 4, (8, 8), 1, layer_norm=True)
    x = torch.randn(5, 4)
    out = net(x)
    assert out.shape == (3, 5, 1)
    assert torch.allclose(net(x.expand(3, 5, 4)), out)
    assert not torch.allclose(out[0], out[1])
    # A loss on one member's output leaves the other members' gradients at zero.
    out[1].sum().backward()
    grad = net.layers[0].weight.grad
    assert grad[1].abs().sum() > 0 and grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0
