"""The IQL critic on tiny deterministic MDPs whose true values are known."""

import dataclasses

import pytest
import torch

from borl.critics import IQLConfig, IQLCritic

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = IQLConfig(hidden=64, expectile=0.9, discount=0.9, tau=0.05, lr=1e-3)
GOAL = 4


def one_hot(states: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(states, GOAL + 1).float()


def chain_batch() -> dict[str, torch.Tensor]:
    """Chain 0..4, actions -1 (left) / +1 (right), reward 1 and terminal on reaching state 4.

    Every (state, action) pair of states 0..3 appears, repeated 16 times.
    """
    states = torch.arange(GOAL).repeat_interleave(2).repeat(16)
    moves = torch.tensor([-1, 1]).repeat(GOAL * 16)
    next_states = (states + moves).clamp(0, GOAL)
    done = (next_states == GOAL).float()
    return {
        "obs": one_hot(states),
        "actions": moves[:, None].float(),
        "rewards": done,
        "next_obs": one_hot(next_states),
        "terminals": done,
    }


def train(critic: IQLCritic, batch: dict[str, torch.Tensor], steps: int) -> None:
    for _ in range(steps):
        critic.update(batch)


def expectile_fixed_point(expectile: float, discount: float) -> tuple[torch.Tensor, torch.Tensor]:
    """IQL's exact solution on the chain: V(s) is the expectile of {Q(s, right), Q(s, left)}."""
    v = torch.zeros(GOAL, dtype=torch.float64)
    for _ in range(200):
        q_right = torch.cat([discount * v[1:], torch.ones(1, dtype=torch.float64)])
        q_left = discount * torch.cat([v[:1], v[:-1]])
        v = expectile * q_right + (1 - expectile) * q_left
    return q_right.float(), v.float()


def test_chain_values_approach_the_discounted_return(device):
    torch.manual_seed(0)
    critic = IQLCritic(GOAL + 1, 1, SMALL, device=device)
    train(critic, {key: value.to(device) for key, value in chain_batch().items()}, 1000)
    critic.to("cpu")
    states = torch.arange(GOAL)
    right, left = torch.ones(GOAL, 1), -torch.ones(GOAL, 1)
    q_right = critic.q(one_hot(states), right)
    true_q_right = SMALL.discount ** (GOAL - 1 - states).float()
    assert torch.allclose(q_right, true_q_right, atol=0.1), q_right
    # More precisely, the values IQL converges to, which an expectile below 1 biases slightly down.
    iql_q_right, iql_v = expectile_fixed_point(SMALL.expectile, SMALL.discount)
    assert torch.allclose(q_right, iql_q_right, atol=0.03), (q_right, iql_q_right)
    assert torch.allclose(critic.v(one_hot(states)), iql_v, atol=0.03)
    assert bool((q_right > critic.q(one_hot(states), left)).all())
    # With expectile 0.9, V sits close to the best action's value.
    assert torch.allclose(critic.v(one_hot(states)), q_right, atol=0.1)
    assert torch.allclose(critic.q(one_hot(states), right, use_target=False), q_right, atol=0.05)
    assert critic.advantage(one_hot(states), left).shape == (GOAL,)
    assert bool((critic.advantage(one_hot(states), left) < 0).all())


def test_q_clip_keeps_values_in_the_reward_range():
    # Reward 1 on every step and no terminal: the unclipped return would be 1 / (1 - 0.9) = 10.
    batch = chain_batch()
    batch["rewards"] = torch.ones_like(batch["rewards"])
    batch["terminals"] = torch.zeros_like(batch["terminals"])
    torch.manual_seed(0)
    critic = IQLCritic(GOAL + 1, 1, SMALL)
    train(critic, batch, 300)
    q = critic.q(batch["obs"], batch["actions"], use_target=False)
    assert bool((q > 0.9).all() and (q < 1.05).all()), q
    unclipped = IQLCritic(GOAL + 1, 1, dataclasses.replace(SMALL, q_clip=None))
    train(unclipped, batch, 300)
    assert bool((unclipped.q(batch["obs"], batch["actions"]) > 2.0).all())


def test_terminals_stop_bootstrapping():
    # A ends in a terminal state B with no reward; C reaches B without ending; B pays 1 and ends.
    a, b, c = one_hot(torch.tensor([0, 1, 2]))
    batch = {
        "obs": torch.stack([a, b, c]).repeat(8, 1),
        "actions": torch.zeros(24, 1),
        "rewards": torch.tensor([0.0, 1.0, 0.0]).repeat(8),
        "next_obs": torch.stack([b, b, b]).repeat(8, 1),
        "terminals": torch.tensor([1.0, 1.0, 0.0]).repeat(8),
    }
    torch.manual_seed(0)
    critic = IQLCritic(GOAL + 1, 1, dataclasses.replace(SMALL, q_clip=None))
    train(critic, batch, 800)
    q = critic.q(torch.stack([a, b, c]), torch.zeros(3, 1))
    assert torch.allclose(q, torch.tensor([0.0, 1.0, SMALL.discount]), atol=0.05), q


def test_state_dict_round_trip_and_infos():
    torch.manual_seed(0)
    critic = IQLCritic(GOAL + 1, 1, SMALL)
    info = critic.update(chain_batch())
    assert set(info) == {"q_loss", "v_loss", "q_mean", "v_mean"}
    assert all(v.dim() == 0 and not v.requires_grad for v in info.values())
    clone = IQLCritic(GOAL + 1, 1, SMALL)
    clone.load_state_dict(critic.state_dict())
    batch = chain_batch()
    assert torch.equal(clone.q(batch["obs"], batch["actions"]), critic.q(batch["obs"], batch["actions"]))
    assert torch.equal(clone.v(batch["obs"]), critic.v(batch["obs"]))
    clone.to("cpu").update(batch)
    assert critic.q_flops_per_row() > 0


def long_chain_batch(length: int) -> dict[str, torch.Tensor]:
    """One successful episode along a chain of `length` states (reward 1 at its terminal last step),
    with each transition's discounted return-to-go, as TransitionDataset stores it."""
    from borl.data.replay import returns_to_go

    states = torch.arange(length)
    rewards = torch.zeros(length)
    rewards[-1] = 1.0
    terminals = rewards.clone()
    returns = returns_to_go(rewards.numpy(), torch.tensor([length]).numpy(), 0.99)
    obs = torch.nn.functional.one_hot(states, length + 1).float()
    next_obs = torch.nn.functional.one_hot(states + 1, length + 1).float()
    return {
        "obs": obs,
        "actions": torch.ones(length, 1),
        "rewards": rewards,
        "next_obs": next_obs,
        "terminals": terminals,
        "returns": torch.from_numpy(returns),
    }


def test_monte_carlo_lower_bound_carries_value_back_along_a_long_episode():
    """300 steps from the start to the reward: after 1000 updates TD alone, with Polyak-slowed targets,
    is still far from the true discounted values along the chain; with the Monte-Carlo bound they fit."""
    batch = long_chain_batch(300)
    true = torch.tensor([0.99 ** (299 - t) for t in range(300)])
    config = IQLConfig(hidden=64, discount=0.99, tau=0.05, lr=1e-3)
    errors = {}
    for bound in (False, True):
        torch.manual_seed(0)
        critic = IQLCritic(301, 1, dataclasses.replace(config, mc_lower_bound=bound))
        train(critic, batch, 1000)
        q = critic.q(batch["obs"], batch["actions"], use_target=False)
        errors[bound] = float((q - true).abs().mean())
    assert errors[True] < 0.05
    assert errors[False] > 3 * errors[True]


def test_q_members_are_the_ensemble_whose_min_is_q():
    torch.manual_seed(0)
    critic = IQLCritic(GOAL + 1, 1, dataclasses.replace(SMALL, num_critics=3))
    batch = chain_batch()
    members = critic.q_members(batch["obs"], batch["actions"])
    assert members.shape == (3, len(batch["obs"]))
    assert torch.equal(members.min(dim=0).values, critic.q(batch["obs"], batch["actions"]))
