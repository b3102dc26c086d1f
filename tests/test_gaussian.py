"""The Gaussian policy: shapes, clipping, weighted likelihood (shared contract: tests/test_contracts.py)."""

import pytest
import torch

from borl.policies import GaussianConfig, GaussianPolicy

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = GaussianConfig(width=32, blocks=1, dropout=0.0, lr=3e-3)


def make_policy(
    obs_dim: int = 3, act_dim: int = 2, config: GaussianConfig = SMALL, device: str = "cpu"
) -> GaussianPolicy:
    torch.manual_seed(0)
    return GaussianPolicy(obs_dim, act_dim, config, device=device)


def two_mode_batch(n: int, mode: float = 0.6) -> dict[str, torch.Tensor]:
    """Constant observation; action dim 0 is -mode in the first half of the rows, +mode in the second."""
    actions = torch.zeros(n, 2)
    actions[: n // 2, 0] = -mode
    actions[n // 2 :, 0] = mode
    return {"obs": torch.ones(n, 3), "actions": actions}


def test_shapes_and_clipping():
    policy = make_policy(obs_dim=4, act_dim=3)
    assert policy.noise_shape(7) == (7, 3)
    noise = 50 * torch.randn(2, *policy.noise_shape(7))
    actions = policy.sample(torch.randn(2, 4), noise)
    assert actions.shape == (2, 7, 3) and actions.dtype == torch.float32
    assert actions.abs().max() <= 1.0 and (actions.abs() == 1.0).any()
    assert policy.sample(torch.randn(2, 4), noise, use_ema=False).shape == (2, 7, 3)
    assert policy.model.training, "sampling must restore the training network's mode"
    assert policy.network_flops_per_row() == policy.sample_flops_per_action() > 0
    with pytest.raises(ValueError):
        policy.sample(torch.randn(2, 4), torch.randn(2, 7, 5, 3))


def test_log_std_is_clamped():
    policy = make_policy()
    with torch.no_grad():
        policy.model.layers[-1].bias[2:] = 100.0
    _, log_std = policy.distribution(torch.zeros(4, 3))
    assert torch.all(log_std == SMALL.log_std_max)


def test_maximum_likelihood_fits_mean_and_std(device):
    policy = make_policy(device=device)
    torch.manual_seed(1)
    for _ in range(1000):
        actions = torch.stack([0.3 + 0.1 * torch.randn(256), torch.full((256,), -0.5)], dim=1)
        policy.update({"obs": torch.ones(256, 3, device=device), "actions": actions.to(device)})
    policy.to("cpu")
    mean, log_std = policy.distribution(torch.ones(1, 3))
    assert abs(mean[0, 0].item() - 0.3) < 0.05 and abs(mean[0, 1].item() + 0.5) < 0.05
    assert abs(log_std[0, 0].exp().item() - 0.1) < 0.04
    assert log_std[0, 1].exp().item() < 0.05


def test_weighted_likelihood_prefers_the_heavily_weighted_mode():
    policy = make_policy()
    batch = two_mode_batch(256)
    weights = torch.ones(256)
    weights[128:] = 20.0
    for _ in range(300):
        policy.update({**batch, "weights": weights})
    mean, _ = policy.distribution(torch.ones(1, 3))
    # The weighted maximum-likelihood mean is (20 * 0.6 - 0.6) / 21 = 0.54.
    assert mean[0, 0].item() > 0.45
    unweighted = make_policy()
    for _ in range(300):
        unweighted.update(batch)
    assert abs(unweighted.distribution(torch.ones(1, 3))[0][0, 0].item()) < 0.1
    assert policy.loss(batch["obs"], batch["actions"], torch.zeros(256)) == 0.0
