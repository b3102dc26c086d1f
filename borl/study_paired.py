"""A study's paired comparisons: differences in success on the same start states, with their paired
standard errors, which the per-method means of summary_by_method.csv cannot give.

Every run of one seed evaluates on the same start states (each episode's seed comes from the run's
seed, the evaluation stream and the episode's index), in every iteration and under every preset, so
three differences are paired:

    deployed - alone    a preset's deployed agent against its own policy's single sample, per iteration
                        (0 by construction where the agent acted with its policy alone)
    last - first        a preset's last iteration against its iteration 0, as deployed
    preset - preset     the grid's first preset against each of the others at the last iteration, as
                        deployed (e.g. recipe - filtered-il)

Each is taken on the start states both sides evaluated (the shorter prefix), per seed and pooled over
seeds ("all": the mean of the seeds' differences; `stderr` from the episodes alone, sqrt(sum se^2) / k,
and `stderr_seeds` the spread of the seeds' differences, NaN with one seed).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from borl.data.store import EpisodeStore
from borl.eval.stats import mean_and_stderr, paired_difference, pooled_over_seeds
from borl.run_directory import checkpoint_name
from borl.study_point import Point

PAIRED_COLUMNS = [
    "task",
    "rollouts",
    "ou_sigma",
    "comparison",
    "preset",
    "iteration",
    "versus",
    "versus_iteration",
    "seed",
    "episodes",
    "difference",
    "stderr",
    "stderr_seeds",
]

DEPLOYED_VS_ALONE = "deployed - alone"
LAST_VS_FIRST = "last - first"
PRESET_VS_PRESET = "preset - preset"


class _Outcomes:
    """Per-episode evaluation outcomes of a study's runs, read once each (only the success field)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._read: dict[tuple[Path, int, str], dict[int, bool]] = {}

    def __call__(self, point: Point, iteration: int, source: str) -> dict[int, bool]:
        key = (point.relative, iteration, source)
        if key not in self._read:
            run = self.directory / point.relative
            metrics = run / "metrics" / f"{checkpoint_name(iteration)}.json"
            outcomes = EpisodeStore(run / "eval").outcomes(iteration, source) if metrics.exists() else {}
            if source == "plain" and not outcomes and _acted_alone(metrics):
                outcomes = self(point, iteration, "eval")
            self._read[key] = outcomes
        return self._read[key]


def _acted_alone(metrics: Path) -> bool:
    """Whether an iteration's agent (of an extracting preset) acted with its policy alone, before
    extraction.from_iteration or after failing its gate: its metrics record `extracted` 0, and its
    deployed episodes are then its plain ones."""
    return metrics.exists() and json.loads(metrics.read_text()).get("extracted") == 0


def _pair(base: dict[int, bool], other: dict[int, bool]) -> tuple[int, float, float] | None:
    """(pairs, mean of other - base, its paired standard error) over the indices both hold."""
    shared = sorted(base.keys() & other.keys())
    if not shared:
        return None
    difference, stderr = paired_difference([base[i] for i in shared], [other[i] for i in shared])
    return len(shared), difference, stderr


def _row(
    point: Point,
    comparison: str,
    side: tuple[str, int],
    versus: tuple[str, int],
    pair: tuple[int, float, float],
) -> dict[str, Any]:
    episodes, difference, stderr = pair
    return {
        "task": point.task,
        "rollouts": point.rollouts,
        "ou_sigma": point.ou_sigma,
        "comparison": comparison,
        "preset": side[0],
        "iteration": side[1],
        "versus": versus[0],
        "versus_iteration": versus[1],
        "seed": point.seed,
        "episodes": episodes,
        "difference": difference,
        "stderr": stderr,
        "stderr_seeds": math.nan,
    }


def per_seed_rows(directory: Path, points: list[Point], last: int) -> list[dict[str, Any]]:
    """Every paired comparison that the finished iterations of a study's points (grid order, its
    first preset first) allow, one row per seed; `last` is the grid's last iteration."""
    outcomes = _Outcomes(directory)
    first = points[0].preset if points else None
    rows = []
    for point in points:
        for iteration in range(last + 1):
            pair = _pair(outcomes(point, iteration, "plain"), outcomes(point, iteration, "eval"))
            if pair is not None:
                side = (point.preset, iteration)
                rows.append(_row(point, DEPLOYED_VS_ALONE, side, (point.preset, iteration), pair))
        pair = _pair(outcomes(point, 0, "eval"), outcomes(point, last, "eval"))
        if pair is not None:
            rows.append(_row(point, LAST_VS_FIRST, (point.preset, last), (point.preset, 0), pair))
        if point.preset != first:
            reference = replace(point, preset=first)
            pair = _pair(outcomes(point, last, "eval"), outcomes(reference, last, "eval"))
            if pair is not None:
                rows.append(_row(point, PRESET_VS_PRESET, (first, last), (point.preset, last), pair))
    return rows


def pooled_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per comparison, over the seeds that have it (seed "all")."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[c] for c in PAIRED_COLUMNS[:8])].append(row)
    pooled = []
    for key, group in groups.items():
        differences = [r["difference"] for r in group]
        difference, stderr = pooled_over_seeds([(r["difference"], r["stderr"]) for r in group])
        pooled.append(
            {
                **dict(zip(PAIRED_COLUMNS[:8], key, strict=True)),
                "seed": "all",
                "episodes": sum(r["episodes"] for r in group),
                "difference": difference,
                "stderr": stderr,
                "stderr_seeds": mean_and_stderr(differences)[1],
            }
        )
    return pooled


def paired_rows(directory: Path, points: list[Point], last: int) -> list[dict[str, Any]]:
    """The rows of DIR/summary_paired.csv: each comparison per seed, then pooled over seeds."""
    rows = per_seed_rows(directory, points, last)
    return rows + pooled_rows(rows)
