"""scripts/merge_studies.py: studies of one grid over disjoint seeds merge into the summaries that one
study of all their seeds writes; other grids and repeated seeds are refused."""

from __future__ import annotations

import csv
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from borl.study import BY_METHOD_COLUMNS, SUMMARY_COLUMNS, aggregate, write_csv
from borl.study_paired import PAIRED_COLUMNS, pooled_rows

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "merge_studies.py"
GRID = {
    "tasks": ["square"],
    "algos": ["filtered-recipe"],
    "seeds": [0],
    "rollouts": [200],
    "ou_sigma": [0.0],
    "iterations": 1,
    "eval_episodes": 10,
    "quick": False,
    "workers": 1,
    "overrides": ["train.epochs=45"],
}


def _load_script():
    spec = importlib.util.spec_from_file_location("merge_studies", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _summary(seed: int, rates: tuple[float, float]) -> list[dict]:
    return [
        {
            "task": "square",
            "preset": "filtered-recipe",
            "rollouts": 200,
            "ou_sigma": 0.0,
            "seed": seed,
            "iteration": i,
            "success_rate": rate,
            "stderr": 0.1,
            "episodes": 10,
            "policy_only_success_rate": rate,
            "rollout_success_rate": math.nan if i == 0 else 0.5,
            "env_steps": 1000 * i,
        }
        for i, rate in enumerate(rates)
    ]


def _paired(seed: int, difference: float) -> dict:
    return {
        "task": "square",
        "rollouts": "200",
        "ou_sigma": "0.0",
        "comparison": "last - first",
        "preset": "filtered-recipe",
        "iteration": "1",
        "versus": "filtered-recipe",
        "versus_iteration": "0",
        "seed": str(seed),
        "episodes": 10,
        "difference": difference,
        "stderr": 0.1,
        "stderr_seeds": math.nan,
    }


def _study(directory: Path, seeds: list[int], summary: list[dict], paired: list[dict], **grid) -> Path:
    directory.mkdir()
    (directory / "study.yaml").write_text(yaml.safe_dump({**GRID, **grid, "seeds": seeds}, sort_keys=False))
    write_csv(directory / "summary.csv", SUMMARY_COLUMNS, summary)
    write_csv(directory / "summary_paired.csv", PAIRED_COLUMNS, paired + pooled_rows(paired))
    return directory


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_studies_merge_into_the_summaries_of_one(tmp_path):
    first = _study(
        tmp_path / "a",
        [0, 1],
        _summary(0, (0.5, 0.6)) + _summary(1, (0.4, 0.7)),
        [_paired(0, 0.1), _paired(1, 0.3)],
    )
    added = _study(tmp_path / "b", [2], _summary(2, (0.6, 0.8)), [_paired(2, 0.2)])
    out = tmp_path / "merged"
    _load_script().merge([first, added], out)

    assert yaml.safe_load((out / "study.yaml").read_text())["seeds"] == [0, 1, 2]
    every_seed = _summary(0, (0.5, 0.6)) + _summary(1, (0.4, 0.7)) + _summary(2, (0.6, 0.8))
    expected = tmp_path / "expected.csv"
    write_csv(expected, BY_METHOD_COLUMNS, aggregate(every_seed))
    assert _rows(out / "summary_by_method.csv") == _rows(expected)
    last = [r for r in _rows(out / "summary_by_method.csv") if r["iteration"] == "1"][0]
    assert (last["seeds"], float(last["mean"])) == ("3", pytest.approx(0.7))
    pooled = [r for r in _rows(out / "summary_paired.csv") if r["seed"] == "all"]
    assert len(pooled) == 1 and float(pooled[0]["difference"]) == pytest.approx(0.2)
    assert float(pooled[0]["stderr"]) == pytest.approx(math.sqrt(3 * 0.01) / 3)
    assert [r["seed"] for r in _rows(out / "summary.csv")] == ["0", "0", "1", "1", "2", "2"]
    assert (out / "figures" / "fig3_success_vs_iteration_square.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("grid", "seeds", "message"),
    [({"overrides": ["train.epochs=0"]}, [2], "differs in: overrides"), ({}, [1, 2], "repeats seeds [1]")],
)
def test_other_grids_and_repeated_seeds_are_refused_in_one_line(tmp_path, grid, seeds, message):
    first = _study(tmp_path / "a", [0, 1], _summary(0, (0.5, 0.6)), [])
    other = _study(tmp_path / "b", seeds, _summary(seeds[-1], (0.5, 0.6)), [], **grid)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(first), str(other), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and message in done.stderr
    assert not (tmp_path / "m").exists()


def test_a_study_that_cannot_be_read_is_one_line(tmp_path):
    good = _study(tmp_path / "a", [0], _summary(0, (0.5, 0.6)), [])
    broken = tmp_path / "b"
    broken.mkdir()
    (broken / "study.yaml").write_text("seeds: [1\n")
    garbled = _study(tmp_path / "c", [2], _summary(2, (0.5, 0.6)), [])
    (garbled / "summary.csv").write_text((garbled / "summary.csv").read_text().replace(",0.5,", ",half,"))
    cases = (
        (broken, "is not valid YAML"),
        (tmp_path / "missing", "is not a study directory"),
        (garbled, "is not a study summary"),
    )
    for other, message in cases:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), str(good), str(other), "--out", str(tmp_path / "m")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not (tmp_path / "m").exists()
