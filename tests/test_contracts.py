"""The contracts every registered policy class and critic meets (borl/policies/base.py,
borl/critics/base.py), and the study's axes as objects: one test per registry entry, not per class."""

import dataclasses

import pytest
import torch
from test_calql import CONFIG as CRITIC_CONFIG
from test_calql import two_state_batch

from borl.algos import ALGORITHMS
from borl.config import RunConfig, build_config
from borl.critics import CRITICS
from borl.errors import BorlError
from borl.extraction import EXTRACTIONS
from borl.policies import POLICIES

pytestmark = pytest.mark.usefixtures("one_thread")

OBS_DIM, ACT_DIM = 3, 2


def small_policy(name: str):
    kind = POLICIES[name]
    settings = dataclasses.replace(getattr(RunConfig(), kind.settings_key), width=32, blocks=1, lr=1e-3)
    torch.manual_seed(0)
    return kind(OBS_DIM, ACT_DIM, settings, device="cpu")


def policy_batch(rows: int = 32) -> dict[str, torch.Tensor]:
    return {"obs": torch.randn(rows, OBS_DIM), "actions": torch.rand(rows, ACT_DIM) * 2 - 1}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_registered_policy_meets_the_contract(name):
    policy = small_policy(name)
    assert (policy.obs_dim, policy.act_dim) == (OBS_DIM, ACT_DIM)
    batch = policy_batch()
    info = policy.update(batch)
    assert "policy_loss" in info
    assert all(v.dim() == 0 and not v.requires_grad and torch.isfinite(v) for v in info.values())
    policy.update({**batch, "weights": torch.rand(32)})
    assert policy.step == 2
    assert policy.update_flops_per_row() > policy.network_flops_per_row() > 0
    assert policy.sample_flops_per_action() >= policy.network_flops_per_row()

    obs = torch.randn(3, OBS_DIM)
    noise = 3 * torch.randn(3, *policy.noise_shape(5))
    assert policy.noise_shape(5)[0] == 5
    actions = policy.sample(obs, noise)
    assert actions.shape == (3, 5, ACT_DIM) and actions.dtype == torch.float32
    assert actions.abs().max() <= 1.0
    # A function of the supplied noise alone: the global generator, and batching, change nothing.
    torch.manual_seed(123)
    assert torch.equal(policy.sample(obs, noise), actions)
    assert torch.allclose(policy.sample(obs[1:2], noise[1:2])[0], actions[1], atol=1e-5)
    assert not torch.allclose(policy.sample(obs, torch.randn_like(noise)), actions)
    with pytest.raises(ValueError):
        policy.sample(obs, torch.randn(3, 5, 7))

    clone = small_policy(name)
    clone.load_state_dict(policy.state_dict())
    assert torch.equal(clone.sample(obs, noise), actions) and clone.step == 2
    assert clone.to("cpu") is clone
    clone.update(batch)


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_every_registered_critic_meets_the_contract(name):
    torch.manual_seed(0)
    config = dataclasses.replace(CRITIC_CONFIG, kind=name, q_clip=(0.0, 1.0))
    critic = CRITICS[name](2, 1, config)
    batch = two_state_batch()
    info = critic.update(batch)
    assert all(v.dim() == 0 and not v.requires_grad and torch.isfinite(v) for v in info.values())
    assert critic.policy_samples == CRITICS[name].samples_needed(config) >= 0
    obs, actions = batch["obs"][:5], batch["actions"][:5]
    assert critic.q(obs, actions).shape == (5,) and critic.v(obs).shape == (5,)
    assert critic.q_members(obs, actions).shape == (config.num_critics, 5)
    assert critic.advantage(obs, actions).shape == (5,)
    assert critic.update_flops_per_row() > critic.q_flops_per_row() > 0
    clone = CRITICS[name](2, 1, config)
    clone.load_state_dict(critic.state_dict())
    assert torch.equal(clone.q(obs, actions), critic.q(obs, actions))
    assert clone.to("cpu") is clone


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("extraction", sorted(EXTRACTIONS))
def test_every_axis_combination_builds_or_says_why_not(algorithm, extraction):
    """Each algorithm-class object accepts exactly the extractions it can run."""
    method, algo = EXTRACTIONS[extraction], ALGORITHMS[algorithm]
    runs = (algo.trains_critic or not method.needs_critic) and (
        not algo.freezes_policy or method.acts_with_critic
    )
    overrides = {"algorithm": algorithm, "extraction": {"kind": extraction}}
    if runs:
        config = build_config("recipe", False, overrides)
        assert config.algorithm_class is algo and config.extraction.method is method
        assert config.uses_critic == algo.trains_critic
    else:
        with pytest.raises(BorlError, match="needs"):
            build_config("recipe", False, overrides)
