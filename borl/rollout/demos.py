"""Demonstrations (D0): attempts of the task's scripted expert, in one process, several, or Ray actors,
kept in attempt order so that every way of running them gives the same demos."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import signal
from collections.abc import Iterator
from dataclasses import replace

from borl.data.episode import Episode
from borl.envs.demos import make_attempt
from borl.envs.registry import Task, get_task
from borl.errors import BorlError
from borl.logger import Logger
from borl.workers import get_from_workers, get_while_parent_lives


def _serial_attempts(task: Task, seed: int, noise: float, horizon: int | None) -> Iterator[Episode]:
    env = task.make_env(horizon)
    try:
        for attempt in itertools.count():
            yield make_attempt(task, env, seed, attempt, noise)
    finally:
        env.close()


def _attempt_worker(
    task_name: str, seed: int, noise: float, horizon: int | None, jobs: mp.Queue, results: mp.Queue
) -> None:
    """A demo process: builds the task's environment once, then runs the attempts it is sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        task = get_task(task_name)
        env = task.make_env(horizon)
        while (attempt := get_while_parent_lives(jobs)) is not None:
            results.put(("episode", make_attempt(task, env, seed, attempt, noise)))
    except Exception as error:  # reported to the parent, which raises it there
        results.put(("error", f"{type(error).__name__}: {error}"))


def _parallel_attempts(
    task: Task, seed: int, noise: float, horizon: int | None, workers: int
) -> Iterator[Episode]:
    """The same episodes as _serial_attempts, in the same order, made by `workers` processes.

    Each process keeps up to two attempts queued ahead; attempts that finish out of order wait until
    their predecessors are out. Closing the iterator stops the processes, abandoning any attempts beyond
    the last one taken.
    """
    context = mp.get_context("spawn")
    jobs, results = context.Queue(), context.Queue()
    processes = [
        context.Process(
            target=_attempt_worker, args=(task.name, seed, noise, horizon, jobs, results), daemon=True
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    submitted, finished = 0, {}
    try:
        for attempt in itertools.count():
            while submitted < attempt + 2 * workers:
                jobs.put(submitted)
                submitted += 1
            while attempt not in finished:
                kind, payload = get_from_workers(results, processes, "demo")
                if kind == "error":
                    raise BorlError(f"demo worker failed: {payload}")
                finished[payload.lineage.index] = payload
            yield finished.pop(attempt)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()


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
    if workers < 1:
        raise BorlError(f"demo workers must be at least 1, got {workers}")
    if backend not in ("local", "ray"):
        raise BorlError(f"unknown backend '{backend}' (choose local or ray)")
    noise = task.spec.demo_noise if noise is None else float(noise)
    max_attempts = max(20, 5 * episodes)
    demos: list[Episode] = []
    attempts = 0
    if backend == "ray":
        from borl.rollout.ray_backend import ray_demo_attempts

        made = ray_demo_attempts(task.name, seed, noise, horizon, workers, ray_address)
    elif workers == 1:
        made = _serial_attempts(task, seed, noise, horizon)
    else:
        made = _parallel_attempts(task, seed, noise, horizon, workers)
    try:
        with (logger or Logger(progress=False)).bar(episodes, f"{task.spec.name} demos", "demo") as bar:
            while len(demos) < episodes:
                if attempts == max_attempts:
                    raise BorlError(
                        f"the {task.spec.name} expert succeeded in only {len(demos)} of {attempts} attempts "
                        f"with noise {noise}; lower the noise"
                    )
                episode = next(made)
                attempts += 1
                bar.set_postfix(attempts=attempts, refresh=False)
                if episode.success:
                    lineage = replace(episode.lineage, index=len(demos))
                    demos.append(replace(episode, lineage=lineage))
                    bar.update(1)
    finally:
        made.close()
    return demos, attempts
