"""Demonstrations (D0) from a task's scripted expert, and recording one episode of any policy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from borl.data.episode import Episode, Lineage
from borl.envs.base import TaskEnv
from borl.envs.registry import Task
from borl.errors import BorlError


def attempt_seed(seed: int, attempt: int) -> int:
    """The reset seed of attempt number `attempt` in a collection seeded with `seed` (independent streams)."""
    return int(np.random.SeedSequence(seed, spawn_key=(attempt,)).generate_state(1)[0])


def expert_rng(episode_seed: int) -> np.random.Generator:
    """The expert's noise generator for an episode: derived from, but not equal to, its reset seed."""
    return np.random.default_rng([episode_seed, 1])


def record_episode(
    env: TaskEnv, act: Callable[[np.ndarray], np.ndarray], seed: int, lineage: Lineage
) -> Episode:
    """Reset env with seed and run act until the episode terminates or is truncated.

    Records the simulator state before each action (robomimic's "states").
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
    return Episode(
        observations=np.stack(observations).astype(np.float32),
        actions=np.stack(actions),
        rewards=np.asarray(rewards, dtype=np.float32),
        terminated=bool(terminated),
        success=success,
        lineage=lineage,
        states=np.stack(states),
    )


def collect_demos(
    task: Task,
    episodes: int,
    seed: int,
    noise: float | None = None,
    progress: bool = True,
    horizon: int | None = None,
) -> tuple[list[Episode], int]:
    """Run the task's expert until it has `episodes` successful episodes; return them and the attempts.

    Attempt i resets with attempt_seed(seed, i) (recorded as the episode's lineage seed) and draws the
    expert's noise from expert_rng of that seed, so each demo can be regenerated from its lineage alone.
    noise and horizon default to the task's. Failed attempts are discarded; if the expert fails too
    often (fewer than `episodes` successes in max(20, 5 * episodes) attempts) a BorlError says so.
    """
    if episodes < 1:
        raise BorlError(f"number of demonstrations must be at least 1, got {episodes}")
    noise = task.spec.demo_noise if noise is None else float(noise)
    max_attempts = max(20, 5 * episodes)
    demos: list[Episode] = []
    env = task.make_env(horizon)
    attempts = 0
    try:
        with tqdm(total=episodes, desc=f"{task.spec.name} demos", unit="demo", disable=not progress) as bar:
            while len(demos) < episodes:
                if attempts == max_attempts:
                    raise BorlError(
                        f"the {task.spec.name} expert succeeded in only {len(demos)} of {attempts} attempts "
                        f"with noise {noise}; lower the noise"
                    )
                episode_seed = attempt_seed(seed, attempts)
                attempts += 1
                expert = task.make_expert(env, expert_rng(episode_seed), noise)
                lineage = Lineage(
                    source="demo", iteration=0, index=len(demos), seed=episode_seed, noise=noise
                )
                episode = record_episode(env, expert.act, episode_seed, lineage)
                bar.set_postfix(attempts=attempts, refresh=False)
                if episode.success:
                    demos.append(episode)
                    bar.update(1)
    finally:
        env.close()
    return demos, attempts
