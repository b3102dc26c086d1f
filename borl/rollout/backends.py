"""Choosing where episodes are collected: local worker processes or Ray actors."""

from __future__ import annotations

from borl.config import RunConfig
from borl.rollout.collector import Collector
from borl.rollout.ray_backend import RayCollector

AnyCollector = Collector | RayCollector


def open_collector(config: RunConfig) -> AnyCollector:
    """A collector for config.backend; use it as a context manager."""
    if config.backend == "ray":
        return RayCollector(config)
    return Collector(config)
