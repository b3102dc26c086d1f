"""Demonstrations (D0): attempts of the task's scripted expert on the workers of a pool (borl/pool),
kept in attempt order so that every way of running them gives the same demos."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from borl.data.episode import Episode
from borl.envs.demos import make_attempt
from borl.envs.registry import Task, get_task
from borl.errors import BorlError
from borl.logger import Logger
from borl.pool import open_pool


class DemoWork:
    """A worker's environment of one task, making the attempts it is sent (borl/pool); a phase's
    context is (seed, noise)."""

    def __init__(self, task_name: str, horizon: int | None) -> None:
        self.task = get_task(task_name)
        self.env = self.task.make_env(horizon)

    def serve(
        self,
        context: tuple[int, float],
        next_job: Callable[[], int | None],
        emit: Callable[[int, Episode], None],
    ) -> None:
        seed, noise = context
        while (attempt := next_job()) is not None:
            emit(attempt, make_attempt(self.task, self.env, seed, attempt, noise))

    def close(self) -> None:
        self.env.close()


def collect_demos(
    task: Task,
    episodes: int,
    seed: int,
    noise: float | None = None,
    logger: Logger | None = None,
    horizon: int | None = None,
    workers: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
) -> tuple[list[Episode], int]:
    """Run the task's expert until it has `episodes` successful episodes; return them and the attempts.

    Attempt i resets with attempt_seed(seed, i) (recorded as the episode's lineage seed) and draws the
    expert's noise from expert_rng of that seed, so each demo can be regenerated from its lineage alone,
    and `workers` processes (or Ray actors, with backend "ray") give exactly the demos one process
    gives. noise and horizon default to the task's. Failed attempts are discarded; if the expert
    fails too often (fewer than `episodes` successes in max(20, 5 * episodes) attempts) a BorlError
    says so.
    """
    if episodes < 1:
        raise BorlError(f"number of demonstrations must be at least 1, got {episodes}")
    noise = task.spec.demo_noise if noise is None else float(noise)
    max_attempts = max(20, 5 * episodes)
    demos: list[Episode] = []
    attempts = 0
    work = partial(DemoWork, task.name, horizon)
    with (
        open_pool(work, workers, "demonstration", backend, ray_address) as pool,
        (logger or Logger(progress=False)).bar(episodes, f"{task.spec.name} demos", "demo") as bar,
    ):

        def take(episode: Episode) -> bool:
            """Keep a successful attempt; True once there are enough."""
            nonlocal attempts
            attempts += 1
            bar.set_postfix(attempts=attempts, refresh=False)
            if episode.success:
                lineage = replace(episode.lineage, index=len(demos))
                demos.append(replace(episode, lineage=lineage))
                bar.update(1)
            if len(demos) < episodes and attempts == max_attempts:
                raise BorlError(
                    f"the {task.spec.name} expert succeeded in only {len(demos)} of {attempts} attempts "
                    f"with noise {noise}; lower the noise"
                )
            return len(demos) == episodes

        # Attempts in order, at most two per worker ahead of the one taken: the same demos
        # whichever way they are made.
        pool.run((seed, noise), itertools.count(), take, ahead=2 * workers, ordered=True)
    return demos, attempts
