"""Episode collection: environments stepped in lockstep so the policy acts on them in one batch,
spread over the workers of a pool (borl/pool) that stream finished episodes back to be stored at once.

Every episode is a job named by its lineage and carrying its own seed. The environment's reset, the
policy's sampling noise and the OU noise all derive from that seed alone, so an episode is the same
whichever worker runs it, beside whichever others, and a resumed collection simply runs the jobs
whose episodes are not yet stored.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from borl.agent import Agent
from borl.config import RunConfig
from borl.data.episode import Episode, Lineage
from borl.envs.base import TaskEnv
from borl.envs.registry import get_task
from borl.pool import open_pool
from borl.rollout.noise import OUNoise


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
    emit: Callable[[EpisodeJob, Episode], None],
    ou_theta: float,
) -> None:
    """Run jobs on `envs` in lockstep until next_job() returns None and all episodes have ended;
    emit(job, episode) as each ends."""
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
                    observations, images = agent.observation.split(np.asarray(slot["obs"], dtype=np.float32))
                    emit(
                        slot["job"],
                        Episode(
                            observations=observations,
                            images=images,
                            actions=np.asarray(slot["actions"], dtype=np.float32),
                            rewards=np.asarray(slot["rewards"], dtype=np.float32),
                            terminated=bool(terminated),
                            success=bool(info["success"]),
                            lineage=slot["job"].lineage,
                            states=np.asarray(slot["states"]),
                        ),
                    )
                    start(i)


class CollectionWork:
    """A worker's environments and the agent of the checkpoint its phase names (borl/pool).

    A phase's context is a checkpoint directory's path, or (its content key, its files) where the
    workers do not share this machine's files; the agent is loaded once per checkpoint.
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.envs = [make_env(config) for _ in range(config.envs_per_worker)]
        self.loaded: tuple[str, Agent] | None = None

    def _agent(self, context: str | tuple[str, dict[str, bytes]]) -> Agent:
        key = context if isinstance(context, str) else context[0]
        if self.loaded is None or self.loaded[0] != key:
            # The checkpoint alone rebuilds the agent; the run says only how it acts (`borl eval
            # --set extraction.*` tries other settings).
            extraction = self.config.extraction
            if isinstance(context, str):
                agent = Agent.load(Path(context), extraction=extraction)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    for name, data in context[1].items():
                        (Path(tmp) / name).write_bytes(data)
                    agent = Agent.load(Path(tmp), extraction=extraction)
            self.loaded = (key, agent)
        return self.loaded[1]

    def serve(
        self,
        context: str | tuple[str, dict[str, bytes]],
        next_job: Callable[[], EpisodeJob | None],
        emit: Callable[[EpisodeJob, Episode], None],
    ) -> None:
        run_jobs(self.envs, self._agent(context), next_job, emit, self.config.ou_theta)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def checkpoint_files(checkpoint: Path) -> tuple[str, dict[str, bytes]]:
    """A checkpoint directory as (content key, its files' bytes), to travel to other machines."""
    files = {p.name: p.read_bytes() for p in sorted(checkpoint.iterdir())}
    key = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()
    return key, files


class Collector:
    """Runs episode jobs with the agent of a checkpoint on `config.workers` workers of the pool of
    `config.backend` (borl/pool); use it as a context manager."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.pool = open_pool(
            partial(CollectionWork, config), config.workers, "collection", config.backend, config.ray_address
        )

    def run(
        self, checkpoint: Path, jobs: Sequence[EpisodeJob], on_episode: Callable[[Episode], None]
    ) -> None:
        """Run all jobs, calling on_episode (in this process) as each episode finishes."""
        if not jobs:
            return
        context = str(checkpoint) if self.pool.shares_files else checkpoint_files(checkpoint)
        self.pool.run(context, jobs, on_episode)

    def close(self, graceful: bool = True) -> None:
        self.pool.close(graceful)

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        self.close(graceful=exc_type is None)
