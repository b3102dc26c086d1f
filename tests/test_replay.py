"""The training dataset: every sampled transition matches its episode, with each observation stored once."""

from dataclasses import replace

import numpy as np
import torch
from test_store import make_episode

from borl.data.episode import Lineage
from borl.data.normalization import Normalizer
from borl.data.replay import TransitionDataset, returns_to_go


def test_samples_are_the_episodes_transitions(device):
    episodes = [make_episode(i, length=3 + i, success=i % 2 == 0) for i in range(4)]
    normalizer = Normalizer.fit(
        np.concatenate([e.observations for e in episodes]), np.concatenate([e.actions for e in episodes])
    )
    data = TransitionDataset(episodes, normalizer, device=device)
    expected = {}
    for e in episodes:
        returns = returns_to_go(e.rewards, np.array([len(e)]), 0.99)
        for t in range(len(e)):
            key = tuple(np.round(normalizer.normalize_actions(e.actions[t]), 5))
            expected[key] = (
                normalizer.normalize_obs(e.observations[t]),
                normalizer.normalize_obs(e.observations[t + 1]),
                e.rewards[t],
                float(e.terminated and t == len(e) - 1),
                returns[t],
            )
    assert data.size == len(expected) == sum(len(e) for e in episodes)
    assert data.observations.shape[0] == data.size + len(episodes)
    batch = data.sample(200, torch.Generator(device=device).manual_seed(0))
    assert all(value.device.type == device for value in batch.values())
    batch = {key: value.cpu() for key, value in batch.items()}
    for i in range(200):
        obs, next_obs, reward, terminal, ret = expected[tuple(np.round(batch["actions"][i].numpy(), 5))]
        np.testing.assert_allclose(batch["obs"][i].numpy(), obs, rtol=1e-6)
        np.testing.assert_allclose(batch["next_obs"][i].numpy(), next_obs, rtol=1e-6)
        assert batch["rewards"][i] == reward and batch["terminals"][i] == terminal
        assert abs(float(batch["returns"][i]) - ret) < 1e-6


def test_a_share_of_each_batch_comes_from_the_favoured_transitions():
    episodes = [make_episode(i, length=4) for i in range(5)]
    normalizer = Normalizer.fit(np.zeros((2, 4)), np.array([[-1.0, -1.0], [1.0, 1.0]]))
    data = TransitionDataset(episodes, normalizer)
    favoured = data.subset(np.array([True, False, False, False, False]))
    others = data.subset(np.array([False, True, True, True, True]))
    generator = torch.Generator().manual_seed(0)
    first = data.tensors["actions"][favoured]
    for share, count in ((0.5, 32), (0.25, 16), (0.1, 6)):
        batch = data.sample(64, generator, others, favoured, share)
        from_first = (batch["actions"][:, None] == first[None]).all(-1).any(-1)
        assert int(from_first.sum()) == count and len(batch["actions"]) == 64


def test_in_place_normalisation_equals_the_copying_one():
    obs = np.random.default_rng(0).normal(3, 2, size=(50, 4)).astype(np.float32)
    normalizer = Normalizer.fit(obs, np.zeros((50, 1), np.float32))
    copied = normalizer.normalize_obs(obs)
    np.testing.assert_array_equal(normalizer.normalize_obs(obs.copy(), in_place=True), copied)


def test_fitting_on_episodes_equals_fitting_on_the_successful_observations_and_all_actions():
    episodes = [make_episode(i, length=3 + i, success=i % 2 == 0) for i in range(5)]
    successful = [e for e in episodes if e.success]
    whole = Normalizer.fit(
        np.concatenate([e.observations for e in successful]), np.concatenate([e.actions for e in episodes])
    )
    streamed = Normalizer.fit_episodes(iter(episodes))
    for key, value in whole.state_dict().items():
        np.testing.assert_allclose(streamed.state_dict()[key], value, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        whole.obs_std,
        np.maximum(np.concatenate([e.observations for e in successful]).std(0), 1e-2),
        rtol=1e-5,
    )


def test_failed_episodes_do_not_stretch_the_observation_scale():
    """Long failures far off the successful paths once squeezed the successful states (threading's BC
    on all data fell to 0%): they must not move the mean or the spread, but their actions count."""
    demo = replace(make_episode(0, length=20), success=False, lineage=Lineage("demo", 0, 0))
    failure = make_episode(1, length=400, success=False)
    failure = replace(failure, observations=failure.observations * 0.1 + 100, actions=failure.actions * 3)
    fitted = Normalizer.fit_episodes([demo, failure])
    alone = Normalizer.fit_episodes([demo])
    np.testing.assert_allclose(fitted.obs_mean, alone.obs_mean, rtol=1e-6)
    np.testing.assert_allclose(fitted.obs_std, alone.obs_std, rtol=1e-6)
    np.testing.assert_allclose(fitted.act_high, failure.actions.max(0), rtol=1e-6)
    assert np.all(np.abs(fitted.normalize_obs(failure.observations)) == 5.0)


def test_with_no_successful_episode_observations_come_from_all():
    failures = [make_episode(i, length=10, success=False) for i in range(3)]
    fitted = Normalizer.fit_episodes(failures)
    observations = np.concatenate([e.observations for e in failures])
    np.testing.assert_allclose(fitted.obs_mean, observations.mean(0), rtol=1e-5, atol=1e-6)


def test_returns_to_go_per_episode():
    rewards = np.array([0, 0, 1, 0, 0], dtype=np.float32)
    returns = returns_to_go(rewards, np.array([3, 2]), 0.9)
    assert np.allclose(returns, [0.81, 0.9, 1.0, 0.0, 0.0])
