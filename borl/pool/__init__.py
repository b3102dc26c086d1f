"""One worker pool for borl's parallel work (borl/pool/base.py): threads, processes or Ray actors."""

from __future__ import annotations

from collections.abc import Callable

from borl.errors import BorlError
from borl.pool.base import Pool, Work
from borl.pool.local import ProcessPool, ThreadPool

__all__ = ["Pool", "Work", "open_pool"]


def open_pool(
    factory: Callable[[], Work],
    workers: int,
    kind: str,
    backend: str = "local",
    ray_address: str | None = None,
) -> Pool:
    """`workers` workers of `factory`'s work: Ray actors for backend "ray", else processes (a thread
    for one worker)."""
    if workers < 1:
        raise BorlError(f"{kind} workers must be at least 1, got {workers}")
    if backend == "ray":
        from borl.pool.ray_actors import RayPool

        return RayPool(factory, workers, kind, ray_address)
    if backend != "local":
        raise BorlError(f"unknown backend '{backend}' (choose local or ray)")
    if workers == 1:
        return ThreadPool(factory, kind)
    return ProcessPool(factory, workers, kind)
