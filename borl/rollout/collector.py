"""Episode collection: environments stepped in lockstep so the policy acts on them in one batch,
spread over worker processes that stream finished episodes back to be stored at once.

Every episode is a job named by its lineage and carrying its own seed. The environment's reset, the
policy's sampling noise and the OU noise all derive from that seed alone, so an episode is the same
whichever worker runs it, beside whichever others, and a resumed collection simply runs the jobs
whose episodes are not yet stored.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from borl.agent import Agent
from borl.config import RunConfig
from borl.data.episode import Episode, Lineage
from borl.data.store import decode_episode, encode_episode
from borl.envs.base import TaskEnv
from borl.envs.registry import get_task
from borl.errors import BorlError
from borl.rollout.noise import OUNoise
from borl.workers import get_from_workers, get_while_parent_lives


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: its lineage (with seed and noise) and whether to act with extraction."""

    lineage: Lineage
    extract: bool = True


def episode_seed(run_seed: int, stream: str, iteration: int, index: int) -> int:
    """A seed for one episode, independent of every other episode's."""
    words = [run_seed, sum(ord(c) << (8 * i) for i, c in enumerate(stream[:8])), iteration, index]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def make_env(config: RunConfig) -> TaskEnv:
    return get_task(config.task).make_env(horizon=config.horizon)


def run_jobs(
    envs: Sequence[TaskEnv],
    agent: Agent,
    next_job: Callable[[], EpisodeJob | None],
    emit: Callable[[Episode], None],
    ou_theta: float,
) -> None:
    """Run jobs on `envs` in lockstep until next_job() returns None and all episodes have ended."""
    slots: list[dict | None] = [None] * len(envs)

    def start(i: int) -> None:
        job = next_job()
        if job is None:
            slots[i] = None
            return
        seed = job.lineage.seed
        obs = envs[i].reset(seed)
        slots[i] = {
            "job": job,
            "generator": torch.Generator().manual_seed(seed),
            "ou": OUNoise(agent.act_dim, job.lineage.noise, ou_theta, np.random.default_rng(seed)),
            "obs": [obs],
            "actions": [],
            "rewards": [],
            "states": [],
        }

    for i in range(len(envs)):
        start(i)
    while any(slots):
        active = [i for i, s in enumerate(slots) if s is not None]
        groups = [[i for i in active if slots[i]["job"].extract == extract] for extract in (True, False)]
        for extract, group in zip((True, False), groups, strict=True):
            if not group:
                continue
            obs = np.stack([slots[i]["obs"][-1] for i in group])
            actions = agent.act(obs, [slots[i]["generator"] for i in group], extract=extract)
            for i, action in zip(group, actions, strict=True):
                slot = slots[i]
                action = np.clip(action + slot["ou"](), -1.0, 1.0)
                slot["states"].append(envs[i].sim_state())
                obs_next, reward, terminated, truncated, info = envs[i].step(action)
                slot["actions"].append(action)
                slot["rewards"].append(reward)
                slot["obs"].append(obs_next)
                if terminated or truncated:
                    emit(
                        Episode(
                            observations=np.asarray(slot["obs"], dtype=np.float32),
                            actions=np.asarray(slot["actions"], dtype=np.float32),
                            rewards=np.asarray(slot["rewards"], dtype=np.float32),
                            terminated=bool(terminated),
                            success=bool(info["success"]),
                            lineage=slot["job"].lineage,
                            states=np.asarray(slot["states"]),
                        )
                    )
                    start(i)


def _worker_main(config: RunConfig, inbox: mp.Queue, jobs: mp.Queue, outbox: mp.Queue) -> None:
    """A collection process: builds its environments once, then serves one phase per inbox message.

    It ignores SIGINT (the parent handles Ctrl-C) and exits when the parent is gone.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    try:
        envs = [make_env(config) for _ in range(config.envs_per_worker)]
        loaded: tuple[str, Agent] | None = None
        while (checkpoint := get_while_parent_lives(inbox)) is not None:
            if loaded is None or loaded[0] != checkpoint:
                loaded = (checkpoint, Agent.load(Path(checkpoint), config))
            exhausted = False

            def next_job() -> EpisodeJob | None:
                nonlocal exhausted
                if exhausted:
                    return None
                job = get_while_parent_lives(jobs)
                exhausted = job is None
                return job

            def send(episode: Episode) -> None:
                outbox.put(("episode", encode_episode(episode)))

            run_jobs(envs, loaded[1], next_job, send, config.ou_theta)
            outbox.put(("done", None))
    except Exception as error:  # reported to the parent, which raises it there
        outbox.put(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))


class Collector:
    """Runs episode jobs with the agent of a checkpoint, on `workers` processes (or in this one if 1)."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.workers: list[tuple[mp.Process, mp.Queue]] = []
        self.local_envs: list[TaskEnv] = []
        if config.workers > 1:
            context = mp.get_context("spawn")
            self.jobs: mp.Queue = context.Queue()
            self.outbox: mp.Queue = context.Queue()
            for _ in range(config.workers):
                inbox = context.Queue()
                process = context.Process(
                    target=_worker_main, args=(config, inbox, self.jobs, self.outbox), daemon=True
                )
                process.start()
                self.workers.append((process, inbox))

    def run(
        self, checkpoint: Path, jobs: Sequence[EpisodeJob], on_episode: Callable[[Episode], None]
    ) -> None:
        """Run all jobs, calling on_episode (in this process) as each episode finishes."""
        if not jobs:
            return
        if not self.workers:
            self._run_here(checkpoint, jobs, on_episode)
            return
        for _, inbox in self.workers:
            inbox.put(str(checkpoint))
        for job in jobs:
            self.jobs.put(job)
        for _ in self.workers:
            self.jobs.put(None)
        done = 0
        while done < len(self.workers):
            kind, payload = get_from_workers(self.outbox, [p for p, _ in self.workers], "collection")
            if kind == "episode":
                on_episode(decode_episode(payload))
            elif kind == "done":
                done += 1
            else:
                raise BorlError(f"collection worker failed: {payload.splitlines()[0]}")

    def _run_here(self, checkpoint: Path, jobs: Sequence[EpisodeJob], on_episode: Callable) -> None:
        if not self.local_envs:
            self.local_envs = [make_env(self.config) for _ in range(self.config.envs_per_worker)]
        agent = Agent.load(checkpoint, self.config)
        pending = iter(jobs)
        run_jobs(
            self.local_envs,
            agent,
            lambda: next(pending, None),
            on_episode,
            self.config.ou_theta,
        )

    def close(self, graceful: bool = True) -> None:
        """Stop the workers: let them finish and exit, or (after an error) terminate them now."""
        for process, inbox in self.workers:
            if graceful and process.is_alive():
                inbox.put(None)
        for process, _ in self.workers:
            process.join(timeout=10 if graceful else 0)
            if process.is_alive():
                process.terminate()
                process.join()
        for env in self.local_envs:
            env.close()
        self.workers = []
        self.local_envs = []

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        self.close(graceful=exc_type is None)
