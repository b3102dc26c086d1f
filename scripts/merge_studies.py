"""Merge studies of one grid that ran disjoint seeds (a seed added later, in another directory or on
another machine) into one study's summaries, computed by `borl study`'s own functions.

    python scripts/merge_studies.py STUDY [STUDY ...] --out DIR

Each STUDY needs only its study.yaml, summary.csv and summary_paired.csv (what docs/results keeps of
a study, not its runs). DIR gets the merged study.yaml (the seeds' union), summary.csv,
summary_by_method.csv (`borl.study.aggregate` over every seed's rows), summary_paired.csv (every
seed's rows, pooled by `borl.study_paired.pooled_rows`) and the figures that the table supports.
Studies whose grids differ in anything but their seeds, or that share a seed, are refused.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import yaml

from borl.errors import BorlError
from borl.eval.figures import draw_study_figures
from borl.files import write_atomic
from borl.study import BY_METHOD_COLUMNS, STUDY_FILE, SUMMARY_COLUMNS, aggregate, write_csv
from borl.study_paired import PAIRED_COLUMNS, pooled_rows

SUMMARY_TYPES = {
    "rollouts": int,
    "ou_sigma": float,
    "seed": int,
    "iteration": int,
    "success_rate": float,
    "stderr": float,
    "episodes": int,
    "policy_only_success_rate": float,
    "rollout_success_rate": float,
    "env_steps": int,
}
PAIRED_TYPES = {"difference": float, "stderr": float, "episodes": int}


def _read_csv(path: Path, types: dict[str, type]) -> list[dict[str, Any]]:
    try:
        with open(path, newline="") as f:
            return [
                {k: types[k](v) if k in types else v for k, v in row.items()} for row in csv.DictReader(f)
            ]
    except OSError as error:
        raise BorlError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise BorlError(f"{path} is not a study summary: {error}") from None


def _grid(directory: Path) -> dict[str, Any]:
    try:
        grid = yaml.safe_load((directory / STUDY_FILE).read_text())
    except OSError as error:
        raise BorlError(f"{directory} is not a study directory: {error.strerror}") from None
    except yaml.YAMLError:
        raise BorlError(f"{directory / STUDY_FILE} is not valid YAML") from None
    if not isinstance(grid, dict) or "seeds" not in grid:
        raise BorlError(f"{directory / STUDY_FILE} is not a study grid")
    return grid


def merge(studies: list[Path], out: Path) -> list[dict[str, Any]]:
    """Write DIR's merged summaries and figures; returns the over-seeds table."""
    grids = [_grid(study) for study in studies]
    first = {k: v for k, v in grids[0].items() if k != "seeds"}
    seeds: list[int] = []
    for study, grid in zip(studies, grids, strict=True):
        rest = {k: v for k, v in grid.items() if k != "seeds"}
        if rest != first:
            differ = ", ".join(k for k in sorted(set(rest) | set(first)) if rest.get(k) != first.get(k))
            raise BorlError(f"{study} is another grid than {studies[0]} (differs in: {differ})")
        if set(grid["seeds"]) & set(seeds):
            raise BorlError(f"{study} repeats seeds {sorted(set(grid['seeds']) & set(seeds))}")
        seeds += grid["seeds"]
    rows = [row for study in studies for row in _read_csv(study / "summary.csv", SUMMARY_TYPES)]
    tasks, algos = grids[0]["tasks"], grids[0]["algos"]
    rows.sort(  # `borl study`'s order: the grid's tasks and presets, then M, noise, seed, iteration
        key=lambda r: (
            tasks.index(r["task"]),
            algos.index(r["preset"]),
            *(r[k] for k in ("rollouts", "ou_sigma", "seed", "iteration")),
        )
    )
    paired = [
        row
        for study in studies
        for row in _read_csv(study / "summary_paired.csv", PAIRED_TYPES)
        if row["seed"] != "all"
    ]
    table = aggregate(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / STUDY_FILE, yaml.safe_dump({**grids[0], "seeds": sorted(seeds)}, sort_keys=False))
    write_csv(out / "summary.csv", SUMMARY_COLUMNS, rows)
    write_csv(out / "summary_by_method.csv", BY_METHOD_COLUMNS, table)
    write_csv(out / "summary_paired.csv", PAIRED_COLUMNS, paired + pooled_rows(paired))
    draw_study_figures(table, {}, out / "figures")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="+", type=Path, help="study directories (their summaries)")
    parser.add_argument("--out", type=Path, required=True, help="the merged study's directory")
    args = parser.parse_args(argv)
    try:
        merge(args.studies, args.out)
    except BorlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"merged {len(args.studies)} studies into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
