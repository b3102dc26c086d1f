"""AWR extraction: known advantages give known weights, clipped; the policy step receives them."""

import math

import pytest
import torch

from borl.extraction import awr_weights, weighted_update
from borl.policies import DiffusionConfig, DiffusionPolicy

pytestmark = pytest.mark.usefixtures("one_thread")


class TableCritic:
    """Q(s, a) = a[0], V(s) = s[0]: advantages are set by hand in the batch."""

    def advantage(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return actions[:, 0] - obs[:, 0]


def test_weights_are_exp_beta_advantage_clipped():
    advantages = torch.tensor([-1.0, 0.0, 0.1, 0.5, 2.0])
    weights = awr_weights(advantages, beta=3.0, max_weight=4.0)
    expected = [math.exp(-3.0), 1.0, math.exp(0.3), 4.0, 4.0]
    assert torch.allclose(weights, torch.tensor(expected))
    assert torch.equal(awr_weights(advantages, beta=0.0, max_weight=100.0), torch.ones(5))


def test_policy_step_receives_the_weights_of_the_batch():
    seen = {}

    def update(batch):
        seen.update(batch)
        return {"policy_loss": torch.tensor(0.0)}

    obs = torch.tensor([[0.5], [0.0], [0.0]])
    actions = torch.tensor([[0.0], [0.0], [1.0]])
    batch = {"obs": obs, "actions": actions}
    info = weighted_update(update, TableCritic(), beta=2.0, max_weight=5.0)(batch)
    expected = torch.tensor([math.exp(-1.0), 1.0, 5.0])
    assert torch.allclose(seen["weights"], expected)
    assert "weights" not in batch, "the caller's batch is left as it was"
    assert torch.isclose(info["awr_weight"], expected.mean())


def test_weighted_diffusion_loss_follows_the_heavily_weighted_mode():
    """AWR-weighted denoising on two equally frequent modes samples mostly the favoured one."""
    torch.manual_seed(0)
    policy = DiffusionPolicy(1, 1, DiffusionConfig(width=32, blocks=1, expansion=1, lr=2e-3, dropout=0.0))
    step = weighted_update(policy.update, TableCritic(), beta=3.0, max_weight=100.0)
    for _ in range(600):
        actions = torch.where(torch.rand(256, 1) < 0.5, -0.9, 0.9)
        step({"obs": torch.zeros(256, 1), "actions": actions})
    samples = policy.sample(torch.zeros(1, 1), torch.randn(1, *policy.noise_shape(1000)))[0, :, 0]
    assert (samples > 0).float().mean() > 0.8
