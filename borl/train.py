"""The one training loop for every preset: fit the critic (when the algorithm has one), then the
policy (unless it is frozen), on all data."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from borl.agent import Agent
from borl.algos import policy_episode_mask
from borl.config import RunConfig
from borl.data.episode import Episode
from borl.data.normalization import Normalizer
from borl.data.replay import TransitionDataset
from borl.errors import BorlError
from borl.extraction.awr import weighted_update


def train_agent(
    config: RunConfig,
    episodes: Sequence[Episode],
    obs_dim: int,
    act_dim: int,
    seed: int,
    frozen: Agent | None = None,
    description: str = "train",
    progress: bool = True,
) -> tuple[Agent, dict[str, float]]:
    """A new agent trained from scratch on `episodes`; returns it and the final losses and timing.

    Training from scratch each iteration keeps the critic from carrying wrong values forward, which
    is what made a warm-started critic diverge in the first prototype (FACTS.md).

    With `frozen` (steering after iteration 0), the new agent keeps that agent's policy and its
    normaliser, the action space the policy was trained in, and only the critic is trained.
    With AWR extraction the policy's loss is weighted by exp(beta * (Q - V)) under the critic
    trained just before it.
    """
    torch.manual_seed(seed)
    torch.set_num_threads(config.train.threads)
    if frozen is None:
        observations = np.concatenate([e.observations for e in episodes])
        actions = np.concatenate([e.actions for e in episodes])
        normalizer = Normalizer.fit(observations, actions)
    else:
        normalizer = frozen.normalizer
    agent = Agent(config, obs_dim, act_dim, normalizer, device=config.device)
    data = TransitionDataset(episodes, normalizer, device=config.device)
    steps = config.train
    phases = []
    if agent.critic is not None:
        phases.append(("critic", steps.critic_steps, agent.critic.update, None))
    if frozen is None:
        mask = policy_episode_mask(config.algorithm, episodes)
        if not mask.any():
            raise BorlError("no successful episode to imitate (filtered IL needs at least one)")
        policy_indices = None if mask.all() else data.subset(mask)
        update = agent.policy.update
        if config.extraction.kind == "awr":
            x = config.extraction
            update = weighted_update(update, agent.critic, x.beta, x.max_weight)
        phases.append(("policy", steps.policy_steps, update, policy_indices))
    else:
        agent.policy = frozen.policy
    generator = torch.Generator(device=config.device).manual_seed(seed)
    info: dict[str, float] = {}
    start = time.perf_counter()
    with tqdm(total=sum(p[1] for p in phases), desc=description, disable=not progress, unit="step") as bar:
        for name, count, update, indices in phases:
            for step in range(count):
                result = update(data.sample(steps.batch_size, generator, indices))
                if step % 200 == 0 or step == count - 1:
                    info.update({f"{name}/{k}": float(v) for k, v in result.items()})
                    bar.set_postfix(
                        {k.split("/")[-1]: f"{v:.3g}" for k, v in info.items() if k.startswith(name)}
                    )
                bar.update()
    info["train_seconds"] = time.perf_counter() - start
    info["transitions"] = float(data.size)
    return agent, info
