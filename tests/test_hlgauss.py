"""The HL-Gauss critic: histogram targets, values on the chain whose true values are known, bad settings."""

import dataclasses

import pytest
import torch
from test_iql import GOAL, SMALL, chain_batch, one_hot, train

from borl.config import build_config
from borl.critics import CRITICS, HLGaussCritic
from borl.errors import BorlError

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = dataclasses.replace(SMALL, kind="hlgauss", q_clip=(0.0, 1.0))


def test_targets_are_histograms_whose_mean_is_the_target():
    critic = HLGaussCritic(2, 1, CONFIG)
    targets = torch.tensor([0.0, 0.013, 0.3, 0.5, 0.987, 1.0])
    p = critic.target_probabilities(targets)
    assert p.shape == (6, CONFIG.bins) and bool((p >= 0).all())
    assert torch.allclose(p.sum(dim=-1), torch.ones(6))
    means = p @ critic.centres
    width = 1.0 / CONFIG.bins
    assert torch.allclose(means[2:4], targets[2:4], atol=1e-4)
    # At the range's ends the folded tail lands in the end bin: the mean stays within a bin of it.
    assert bool(((means - targets).abs() <= width).all())


def test_chain_values_approach_the_discounted_return():
    torch.manual_seed(0)
    critic = CRITICS["hlgauss"](GOAL + 1, 1, CONFIG)
    train(critic, chain_batch(), 1000)
    states = torch.arange(GOAL)
    right, left = torch.ones(GOAL, 1), -torch.ones(GOAL, 1)
    q_right = critic.q(one_hot(states), right)
    true_q_right = CONFIG.discount ** (GOAL - 1 - states).float()
    assert torch.allclose(q_right, true_q_right, atol=0.1), q_right
    assert bool((q_right > critic.q(one_hot(states), left)).all())
    assert critic.q_members(one_hot(states), right).shape == (CONFIG.num_critics, GOAL)


@pytest.mark.parametrize(
    ("critic", "message"),
    [
        ({"kind": "hlgauss", "q_clip": None}, "needs critic.q_clip"),
        ({"kind": "hlgauss", "bins": 1}, "critic.bins must be at least 2"),
        ({"kind": "hlgauss", "bin_sigma": 0.0}, "critic.bin_sigma must be positive"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(critic, message):
    with pytest.raises(BorlError, match=message):
        build_config("recipe", True, {"critic": critic})
