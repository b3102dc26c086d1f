"""Does the critic share the policy's image encoder? Measures the two choices on one run's data
(docs/images.md has the numbers and the commands that made them).

Given a finished image run and checkpoints retrained on its data with critic.share_encoder off and on
(`borl retrain`), it reports for each checkpoint the critic's quality on episodes it never trained on
(a later iteration's rollouts): Q's and V's error against the Monte-Carlo return, the TD error, and how
well Q and V rank the transitions of successful episodes above those of failed ones (AUC). Then, on
fresh agents over the training data, the time of one policy and one critic update (rounds alternating
between the two choices, so that the machine's load falls on both alike), the activations each update
keeps for its backward pass, and the bytes of the trained parameters and their Adam state.

    python scripts/critic_encoder.py RUN --train-iteration 1 --held-out 2 \
        --checkpoint own=DIR_A/checkpoints/iter_001 --checkpoint shared=DIR_B/checkpoints/iter_001
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from borl.agent import Agent
from borl.config import RunConfig
from borl.data.episode import Episode
from borl.data.normalization import Normalizer
from borl.data.replay import TransitionDataset, returns_to_go
from borl.data.store import EpisodeStore
from borl.envs.registry import get_task


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive's score > a negative's), ties counting half (Mann-Whitney)."""
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@torch.no_grad()
def critic_quality(
    agent: Agent, episodes: list[Episode], chunk: int = 256
) -> tuple[dict[str, float], list[np.ndarray]]:
    """The critic's (target) Q and V on every transition of `episodes`, centre-cropped as when acting:
    the error and ranking measures, and each episode's Q values."""
    spec, critic, discount = agent.observation, agent.critic, agent.config.critic.discount
    q, v, v_next, g, success = [], [], [], [], []
    for episode in episodes:
        packed = spec.pack(episode.observations, episode.images)
        obs = torch.cat(
            [agent.observation_tensor(packed[i : i + chunk]) for i in range(0, len(packed), chunk)]
        )
        actions = np.clip(agent.normalizer.normalize_actions(episode.actions), -1, 1)
        actions_t = torch.as_tensor(actions, dtype=torch.float32)
        q.append(critic.q(obs[:-1], actions_t).numpy())
        values = critic.v(obs).numpy()
        v.append(values[:-1])
        following = values[1:].copy()
        if episode.terminated:
            following[-1] = 0.0
        v_next.append(following)
        g.append(returns_to_go(episode.rewards, np.array([len(episode)]), discount))
        success.append(np.full(len(episode), episode.success))
    q, v, v_next, g, success = map(np.concatenate, (q, v, v_next, g, success))
    rewards = np.concatenate([e.rewards for e in episodes])
    td = rewards + discount * v_next - q
    per_episode = np.split(q, np.cumsum([len(e) for e in episodes])[:-1])
    episode_q = np.array([float(np.mean(x)) for x in per_episode])
    won = np.array([e.success for e in episodes])
    return {
        "transitions": float(len(q)),
        "q_mc_rmse": float(np.sqrt(np.mean((q - g) ** 2))),
        "v_mc_rmse": float(np.sqrt(np.mean((v - g) ** 2))),
        "q_mc_bias": float(np.mean(q - g)),
        "td_rmse": float(np.sqrt(np.mean(td**2))),
        "q_auc_transitions": auc(q[success], q[~success]),
        "v_auc_transitions": auc(v[success], v[~success]),
        "q_auc_episodes": auc(episode_q[won], episode_q[~won]),
    }, per_episode


def auc_difference(
    first: list[np.ndarray], second: list[np.ndarray], won: np.ndarray, resamples: int = 2000
) -> dict[str, float]:
    """The transition AUC of Q (successful episodes' transitions above failed ones') of `second` minus
    `first`, with its bootstrap standard error and 95% interval over episodes (resampled within the
    successful and the failed, the same episodes for both critics)."""

    def transition_auc(qs: list[np.ndarray], chosen: np.ndarray) -> float:
        wins = [qs[i] for i in chosen if won[i]]
        losses = [qs[i] for i in chosen if not won[i]]
        return auc(np.concatenate(wins), np.concatenate(losses))

    everyone = np.arange(len(won))
    difference = transition_auc(second, everyone) - transition_auc(first, everyone)
    rng = np.random.default_rng(0)
    groups = [np.flatnonzero(won), np.flatnonzero(~won)]
    draws = []
    for _ in range(resamples):
        chosen = np.concatenate([rng.choice(g, len(g)) for g in groups])
        draws.append(transition_auc(second, chosen) - transition_auc(first, chosen))
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"difference": difference, "stderr": float(np.std(draws)), "low": float(low), "high": float(high)}


def fresh_agent(config: RunConfig, episodes: list[Episode]) -> tuple[Agent, TransitionDataset]:
    task = get_task(config.task)
    normalizer = Normalizer.fit_episodes(episodes)
    torch.manual_seed(0)
    agent = Agent(config, task.spec.obs_dim, task.spec.act_dim, normalizer, observation=task.spec.observation)
    data = TransitionDataset(episodes, normalizer, "cpu", config.critic.discount, crop=config.encoder.crop)
    return agent, data


def update_times(configs: dict[str, RunConfig], episodes: list[Episode], rounds: int, steps: int) -> dict:
    """Median seconds per update of each choice's policy and critic, rounds alternating."""
    built = {name: fresh_agent(config, episodes) for name, config in configs.items()}
    times: dict[str, dict[str, list[float]]] = {name: {"policy": [], "critic": []} for name in configs}
    generator = torch.Generator().manual_seed(0)
    batch_size = next(iter(configs.values())).train.batch_size
    for round_ in range(rounds + 1):  # round 0 warms up
        for name, (agent, data) in built.items():
            for part, update in (("policy", agent.policy.update), ("critic", agent.critic.update)):
                batches = [data.sample(batch_size, generator) for _ in range(steps)]
                start = time.perf_counter()
                for batch in batches:
                    update(batch)
                if round_:
                    times[name][part].append((time.perf_counter() - start) / steps)
    return {name: {part: statistics.median(v) for part, v in parts.items()} for name, parts in times.items()}


def saved_for_backward_mb(update, batch: dict[str, torch.Tensor]) -> float:
    """MB of the tensors autograd keeps for the backward pass of one `update` (its activations),
    each storage counted once."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        update(batch)
    return sum(storages.values()) / 2**20


def memory(config: RunConfig, episodes: list[Episode]) -> dict:
    """What training holds beyond the data: each update's activations kept for backward, and the
    trained parameters with their two Adam moments."""
    agent, data = fresh_agent(config, episodes)
    batch = data.sample(config.train.batch_size, torch.Generator().manual_seed(0))
    groups = [g for opt in (agent.policy.optimizer, agent.critic.optimizer) for g in opt.param_groups]
    trained = {id(p): p.numel() for g in groups for p in g["params"]}
    critic = sum(p.numel() for g in agent.critic.optimizer.param_groups for p in g["params"])
    return {
        "policy_saved_for_backward_mb": saved_for_backward_mb(agent.policy.update, batch),
        "critic_saved_for_backward_mb": saved_for_backward_mb(agent.critic.update, batch),
        "trained_parameters": sum(trained.values()),
        "critic_trained_parameters": critic,
        "parameters_and_adam_mb": 3 * 4 * sum(trained.values()) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--train-iteration", type=int, required=True)
    parser.add_argument(
        "--held-out", type=int, required=True, help="the iteration whose episodes are held out"
    )
    parser.add_argument("--checkpoint", action="append", required=True, help="NAME=DIR")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quality-only", action="store_true", help="skip the timing and memory")
    args = parser.parse_args()
    torch.set_num_threads(1)
    store = EpisodeStore(args.run / "data")
    train = [e for i in range(args.train_iteration + 1) for e in store.load(i)]
    held_out = store.load(args.held_out)
    report: dict = {
        "held_out_episodes": len(held_out),
        "held_out_successes": sum(e.success for e in held_out),
    }
    configs, scores = {}, {}
    for item in args.checkpoint:
        name, _, directory = item.partition("=")
        agent = Agent.load(Path(directory))
        configs[name] = agent.config
        quality, scores[name] = critic_quality(agent, held_out)
        report[name] = {"held_out": quality}
        print(name, json.dumps(report[name]), flush=True)
    if len(scores) == 2:
        (first, a), (second, b) = scores.items()
        won = np.array([e.success for e in held_out])
        report[f"q_auc_transitions {second} - {first}"] = auc_difference(a, b, won)
        print(json.dumps(report), flush=True)
    timing = {} if args.quality_only else update_times(configs, train, args.rounds, args.steps)
    for name, config in configs.items() if timing else ():
        report[name]["seconds_per_update"] = timing[name]
        report[name]["memory"] = memory(config, train)
        print(name, json.dumps(report[name]), flush=True)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
