"""The worker pool on Ray actors, on this machine or a cluster (`--ray-address`).

Each actor builds its work once and serves each phase from a Ray queue of jobs shared by all actors,
as the local processes (borl/pool/local.py) do from theirs: the jobs, seeds and results are the local
ones.
Nothing assumes a shared file system: a phase's context travels by value (a checkpoint as bytes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from borl.errors import BorlError
from borl.pool.base import Message, Pool, Work, serve_phase, wait_for


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
def ray_session(backend: str, workers: int, address: str | None) -> Iterator[None]:
    """Ray started (or joined) once for a whole run, its demonstrations and its collection, when the
    backend is Ray; shut down at the end if started here. Nothing happens for the local backend.

    Inside, start_ray finds Ray running and leaves it running, so each pool's actors share it.
    """
    if backend != "ray":
        yield
        return
    ray, started = start_ray(workers, address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def ray_cause(error: Exception) -> str:
    """The line of a Ray error that says what went wrong: its last, where Ray puts the actor's or
    task's own exception (the first line only names the actor, in terminal colours)."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines()]
    return next((line for line in reversed(lines) if line), type(error).__name__)


class PoolActor:
    """One Ray actor: its work, serving a phase per call from the shared queue of jobs."""

    def __init__(self, factory: Callable[[], Work]) -> None:
        import torch

        torch.set_num_threads(1)
        self.work = factory()

    def serve(self, context: Any, jobs: Any, results: Any) -> None:
        serve_phase(self.work, context, jobs.get, results.put)


class RayPool(Pool):
    """`size` Ray actors of one CPU each."""

    shares_files = False

    def __init__(self, factory: Callable[[], Work], size: int, kind: str, address: str | None) -> None:
        super().__init__(kind, size)
        self.ray, self.started_ray = start_ray(size, address)
        from ray.util.queue import Queue

        # The queues' own actors take no CPU, so they never wait for one held by a worker.
        self.jobs = Queue(actor_options={"num_cpus": 0})
        self.results = Queue(actor_options={"num_cpus": 0})
        remote = self.ray.remote(num_cpus=1)(PoolActor)
        self.actors = [remote.remote(factory) for _ in range(size)]
        self.calls: list[Any] = []

    def _begin(self, context: Any) -> None:
        shared = self.ray.put(context)
        self.calls = [actor.serve.remote(shared, self.jobs, self.results) for actor in self.actors]

    def _put_job(self, item: tuple[int, Any] | None) -> None:
        self.jobs.put(item)

    def _get(self) -> Message:
        from ray.util.queue import Empty

        return wait_for(lambda seconds: self.results.get(timeout=seconds), Empty, 2.0, self._alive)

    def _alive(self) -> None:
        """Raises the error of an actor's phase that ended in one."""
        ready, _ = self.ray.wait(self.calls, num_returns=len(self.calls), timeout=0)
        for call in ready:
            try:
                self.ray.get(call)
            except self.ray.exceptions.RayError as error:
                raise BorlError(f"Ray {self.kind} failed: {ray_cause(error)}") from None

    def close(self, graceful: bool = True) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        for handle in (self.jobs, self.results):
            handle.shutdown()
        self.actors = []
        if self.started_ray:
            self.ray.shutdown()
