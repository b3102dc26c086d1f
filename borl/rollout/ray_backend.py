"""Collection and demonstrations on Ray actors, on this machine or a cluster (`--ray-address`).

The jobs, seeds and episodes are exactly those of the local backend: each actor runs the same
lockstep `run_jobs` on its own environments. The checkpoint travels as bytes, so actors on other
machines need no shared file system. Episodes come back a chunk (one per environment of an actor)
at a time and are stored as each chunk returns. Demonstration attempts run one per call on their
own actors and come back in attempt order, as from the local processes.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

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


def _cause(error: Exception) -> str:
    """The line of a Ray error that says what went wrong: its last, where Ray puts the actor's or
    task's own exception (the first line only names the actor, in terminal colours)."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines()]
    return next((line for line in reversed(lines) if line), type(error).__name__)


def start_ray(workers: int, address: str | None) -> tuple[ModuleType, bool]:
    """Ray, joined to `address` or started here with `workers` CPUs; and whether this call started it."""
    try:
        import ray
    except ImportError:
        raise BorlError("--backend ray needs Ray: pip install 'borl[ray]'") from None
    if ray.is_initialized():
        return ray, False
    ray.init(
        address=address,
        num_cpus=workers if address is None else None,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )
    return ray, True


@contextmanager
def ray_session(config: RunConfig) -> Iterator[None]:
    """Ray started (or joined) once for a whole run, its demonstrations and its collection, when the
    run's backend is Ray; shut down at the end if started here. Nothing happens for the local backend.

    Inside, start_ray finds Ray running and leaves it running, so each phase's actors share it.
    """
    if config.backend != "ray":
        yield
        return
    ray, started = start_ray(config.workers, config.ray_address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


class RayCollector:
    """The local Collector's interface, backed by `config.workers` Ray actors of one CPU each."""

    def __init__(self, config: RunConfig) -> None:
        self.ray, self.started_ray = start_ray(config.workers, config.ray_address)
        self.config = config
        remote = self.ray.remote(num_cpus=1)(CollectionActor)
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
                raise BorlError(f"Ray collection failed: {_cause(error)}") from None
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


class DemoActor:
    """One Ray actor making demonstration attempts of a task in its own environment."""

    def __init__(self, task_name: str, horizon: int | None) -> None:
        from borl.envs.registry import get_task

        self.task = get_task(task_name)
        self.env = self.task.make_env(horizon)

    def attempt(self, seed: int, attempt: int, noise: float) -> bytes:
        from borl.envs.demos import make_attempt

        return encode_episode(make_attempt(self.task, self.env, seed, attempt, noise))


def ray_demo_attempts(
    task_name: str, seed: int, noise: float, horizon: int | None, workers: int, address: str | None
) -> Iterator[Episode]:
    """Demonstration attempts 0, 1, 2, ... in order, made by `workers` Ray actors.

    As with the local processes, attempts run at most 2 * workers ahead of the one taken, and each
    goes to an actor with fewer than two in hand (attempts vary in length, so no fixed rotation);
    closing the iterator drops the attempts beyond the last one taken.
    """
    ray, started = start_ray(workers, address)
    actors = [ray.remote(num_cpus=1)(DemoActor).remote(task_name, horizon) for _ in range(workers)]
    in_hand = [0] * workers
    running: dict[int, tuple[object, int]] = {}  # attempt -> (its result, its actor)
    finished: dict[int, object] = {}
    submitted = 0

    def top_up(limit: int) -> None:
        nonlocal submitted
        while submitted < limit and min(in_hand) < 2:
            actor = in_hand.index(min(in_hand))
            running[submitted] = (actors[actor].attempt.remote(seed, submitted, noise), actor)
            in_hand[actor] += 1
            submitted += 1

    try:
        for attempt in itertools.count():
            top_up(attempt + 2 * workers)
            while attempt not in finished:
                (ready,), _ = ray.wait([ref for ref, _ in running.values()], num_returns=1)
                done = next(a for a, (ref, _) in running.items() if ref == ready)
                finished[done], actor = running.pop(done)
                in_hand[actor] -= 1
                top_up(attempt + 2 * workers)
            try:
                payload = ray.get(finished.pop(attempt))
            except ray.exceptions.RayError as error:
                raise BorlError(f"Ray demonstrations failed: {_cause(error)}") from None
            yield decode_episode(payload)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
