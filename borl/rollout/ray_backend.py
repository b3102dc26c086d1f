"""Collection on Ray actors, on this machine or a cluster (`--ray-address`).

The jobs, seeds and episodes are exactly those of the local backend: each actor runs the same
lockstep `run_jobs` on its own environments. The checkpoint travels as bytes, so actors on other
machines need no shared file system. Episodes come back a chunk (one per environment of an actor)
at a time and are stored as each chunk returns.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from borl.agent import Agent
from borl.config import RunConfig
from borl.data.episode import Episode
from borl.data.store import decode_episode, encode_episode
from borl.errors import BorlError
from borl.rollout.collector import EpisodeJob, make_env, run_jobs


class CollectionActor:
    """One Ray actor: its environments, and the agent of the checkpoint it last received."""

    def __init__(self, config: RunConfig) -> None:
        torch.set_num_threads(1)
        self.config = config
        self.envs = [make_env(config) for _ in range(config.envs_per_worker)]
        self.agent_key: str | None = None
        self.agent: Agent | None = None

    def run(self, key: str, checkpoint: dict[str, bytes], jobs: list[EpisodeJob]) -> list[bytes]:
        if key != self.agent_key:
            with tempfile.TemporaryDirectory() as tmp:
                for name, data in checkpoint.items():
                    (Path(tmp) / name).write_bytes(data)
                self.agent = Agent.load(Path(tmp), self.config)
            self.agent_key = key
        episodes: list[bytes] = []
        pending = iter(jobs)
        run_jobs(
            self.envs,
            self.agent,
            lambda: next(pending, None),
            lambda e: episodes.append(encode_episode(e)),
            self.config.ou_theta,
        )
        return episodes


class RayCollector:
    """The local Collector's interface, backed by `config.workers` Ray actors of one CPU each."""

    def __init__(self, config: RunConfig) -> None:
        try:
            import ray
        except ImportError:
            raise BorlError("--backend ray needs Ray: pip install 'borl[ray]'") from None
        self.ray = ray
        self.config = config
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            local = config.ray_address is None
            ray.init(
                address=config.ray_address,
                num_cpus=config.workers if local else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
        remote = ray.remote(num_cpus=1)(CollectionActor)
        self.actors = [remote.remote(config) for _ in range(config.workers)]

    def run(
        self, checkpoint: Path, jobs: Sequence[EpisodeJob], on_episode: Callable[[Episode], None]
    ) -> None:
        if not jobs:
            return
        ray = self.ray
        files = {p.name: p.read_bytes() for p in sorted(checkpoint.iterdir())}
        key = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()
        files_ref = ray.put(files)
        size = self.config.envs_per_worker
        chunks = [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]
        in_flight = {}

        def submit(actor) -> None:
            if chunks:
                in_flight[actor.run.remote(key, files_ref, chunks.pop(0))] = actor

        for actor in self.actors:
            submit(actor)
        while in_flight:
            (ready,), _ = ray.wait(list(in_flight), num_returns=1)
            actor = in_flight.pop(ready)
            try:
                payloads = ray.get(ready)
            except ray.exceptions.RayError as error:
                raise BorlError(f"Ray collection failed: {str(error).splitlines()[0]}") from None
            for payload in payloads:
                on_episode(decode_episode(payload))
            submit(actor)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started_ray:
            self.ray.shutdown()

    def __enter__(self) -> RayCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
