"""One demonstration attempt of a task's scripted expert, and recording one episode of any policy in one
environment (borl.rollout.demos schedules attempts across processes or Ray actors)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from borl.data.episode import Episode, Lineage
from borl.data.observations import ObservationSpec
from borl.envs.base import TaskEnv
from borl.envs.registry import Task


def attempt_seed(seed: int, attempt: int) -> int:
    """The reset seed of attempt number `attempt` in a collection seeded with `seed` (independent streams)."""
    return int(np.random.SeedSequence(seed, spawn_key=(attempt,)).generate_state(1)[0])


def expert_rng(episode_seed: int) -> np.random.Generator:
    """The expert's noise generator for an episode: derived from, but not equal to, its reset seed."""
    return np.random.default_rng([episode_seed, 1])


def record_episode(
    env: TaskEnv,
    act: Callable[[np.ndarray], np.ndarray],
    seed: int,
    lineage: Lineage,
    observation: ObservationSpec | None = None,
) -> Episode:
    """Reset env with seed and run act until the episode terminates or is truncated.

    Records the simulator state before each action (robomimic's "states"); with an `observation`
    spec that has cameras, the packed observations are stored as low-dim rows and uint8 pictures.
    """
    obs = env.reset(seed)
    observations, actions, rewards, states = [obs], [], [], []
    terminated, success = False, False
    while True:
        states.append(env.sim_state())
        action = np.asarray(act(obs), dtype=np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        success = success or bool(info["success"])
        if terminated or truncated:
            break
    rows = np.stack(observations).astype(np.float32)
    low, images = (rows, None) if observation is None else observation.split(rows)
    return Episode(
        observations=low,
        images=images,
        actions=np.stack(actions),
        rewards=np.asarray(rewards, dtype=np.float32),
        terminated=bool(terminated),
        success=success,
        lineage=lineage,
        states=np.stack(states),
    )


def make_attempt(task: Task, env: TaskEnv, seed: int, attempt: int, noise: float) -> Episode:
    """Attempt number `attempt` of a demo collection seeded with `seed` (its lineage index is the attempt)."""
    episode_seed = attempt_seed(seed, attempt)
    expert = task.make_expert(env, expert_rng(episode_seed), noise)
    lineage = Lineage(source="demo", iteration=0, index=attempt, seed=episode_seed, noise=noise)
    return record_episode(env, expert.act, episode_seed, lineage, task.spec.observation)
