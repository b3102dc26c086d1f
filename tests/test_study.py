"""`borl study`: the grid, bootstrap statistics, summary tables, bad input and one real quick study."""

import csv
import fcntl
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from borl import study as studies
from borl.cli import main
from borl.data.episode import Episode, Lineage
from borl.data.store import EpisodeStore
from borl.eval.stats import bootstrap_ci, mean_and_stderr, paired_difference, pooled_over_seeds
from borl.run_directory import METRIC_COLUMNS
from borl.study_paired import DEPLOYED_VS_ALONE, LAST_VS_FIRST, PAIRED_COLUMNS, PRESET_VS_PRESET

MERGE = Path(__file__).resolve().parents[1] / "scripts" / "merge_studies.py"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def _width(interval: tuple[float, float]) -> float:
    return interval[1] - interval[0]


def test_bootstrap_ci_contains_the_mean_and_is_reproducible():
    low, high = bootstrap_ci([6, 7, 5], [10, 10, 10], seed=3)
    assert low < 0.6 < high
    assert bootstrap_ci([6, 7, 5], [10, 10, 10], seed=3) == (low, high)


def test_bootstrap_ci_narrows_with_more_episodes_and_more_seeds():
    few = bootstrap_ci([6, 7, 5], [10, 10, 10])
    more_episodes = bootstrap_ci([60, 70, 50], [100, 100, 100])
    more_seeds = bootstrap_ci([6, 7, 5] * 4, [10] * 12)
    assert _width(more_episodes) < _width(few)
    assert _width(more_seeds) < _width(few)


def test_bootstrap_ci_of_one_seed_is_the_episode_bootstrap():
    low, high = bootstrap_ci([30], [100], resamples=20_000)
    half = 1.96 * math.sqrt(0.3 * 0.7 / 100)
    assert low == pytest.approx(0.3 - half, abs=0.015)
    assert high == pytest.approx(0.3 + half, abs=0.015)
    assert bootstrap_ci([10, 5], [10, 5]) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci([0], [0]))
    with pytest.raises(ValueError):
        bootstrap_ci([11], [10])


def test_paired_difference_uses_the_spread_of_the_differences():
    first = [1, 1, 0, 0, 1, 0]
    second = [1, 1, 1, 0, 1, 1]
    mean, stderr = paired_difference(first, second)
    assert mean == pytest.approx(2 / 6)
    assert stderr == pytest.approx(math.sqrt((4 * (1 / 3) ** 2 + 2 * (2 / 3) ** 2) / 5 / 6))
    with pytest.raises(ValueError, match="equal counts"):
        paired_difference([1], [1, 0])


def test_mean_and_stderr_over_seeds():
    mean, stderr = mean_and_stderr([0.2, 0.4])
    assert mean == pytest.approx(0.3) and stderr == pytest.approx(0.1)
    mean, stderr = mean_and_stderr([0.5])
    assert mean == 0.5 and math.isnan(stderr)


def _grid(**changes) -> studies.StudyGrid:
    values = {
        "tasks": ("lift",),
        "algos": ("recipe", "il"),
        "seeds": (0, 1),
        "rollouts": (4,),
        "ou_sigma": (0.0,),
        "iterations": 1,
        "eval_episodes": 10,
        "quick": True,
    }
    return studies.StudyGrid(**{**values, **changes})


def _write_metrics(directory: Path, rates: list[float], episodes: int = 10) -> None:
    directory.mkdir(parents=True)
    with open(directory / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        for iteration, rate in enumerate(rates):
            writer.writerow(
                {
                    **dict.fromkeys(METRIC_COLUMNS, 0),
                    "iteration": iteration,
                    "eval_success_rate": rate,
                    "eval_stderr": math.sqrt(rate * (1 - rate) / episodes),
                    "eval_episodes": episodes,
                    "policy_only_success_rate": float("nan"),
                }
            )


def test_summary_tables(tmp_path):
    grid = _grid()
    studies.open_study(tmp_path, grid)
    rates = {("recipe", 0): [0.2, 0.6], ("recipe", 1): [0.4, 0.8], ("il", 0): [0.5]}  # il seed 1: not run
    for (preset, seed), values in rates.items():
        _write_metrics(tmp_path / studies.Point("lift", preset, 4, 0.0, seed).relative, values)
    rows, table, paired = studies.summarize(tmp_path, grid)

    with open(tmp_path / "summary.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == studies.SUMMARY_COLUMNS
        written = list(reader)
    assert len(written) == len(rows) == 5
    assert [(r["preset"], r["seed"], r["iteration"]) for r in written[:3]] == [
        ("recipe", "0", "0"),
        ("recipe", "0", "1"),
        ("recipe", "1", "0"),
    ]
    with open(tmp_path / "summary_by_method.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == studies.BY_METHOD_COLUMNS
        assert len(list(reader)) == len(table) == 3
    final = next(r for r in table if r["preset"] == "recipe" and r["iteration"] == 1)
    assert final["seeds"] == 2 and final["episodes"] == 20
    assert final["mean"] == pytest.approx(0.7) and final["stderr"] == pytest.approx(0.1)
    assert final["ci_low"] < 0.7 < final["ci_high"]
    il = next(r for r in table if r["preset"] == "il")
    assert il["seeds"] == 1 and math.isnan(il["stderr"])


def _write_evals(run: Path, iteration: int, source: str, successes: list[int]) -> None:
    """Evaluation episodes as a run stores them, and the iteration's done mark."""
    store = EpisodeStore(run / "eval")
    for index, success in enumerate(successes):
        lineage = Lineage(source, iteration, index, checkpoint=f"iter_{iteration}", seed=index)
        store.append(
            Episode(np.zeros((2, 3)), np.zeros((1, 2)), np.zeros(1), bool(success), bool(success), lineage)
        )
    (run / "metrics").mkdir(parents=True, exist_ok=True)
    (run / "metrics" / f"iter_{iteration:03d}.json").write_text("{}")


def test_paired_comparisons_pair_episodes_on_the_same_starts(tmp_path):
    grid = _grid(algos=("recipe", "filtered-il"))
    studies.open_study(tmp_path, grid)
    recipe = [tmp_path / studies.Point("lift", "recipe", 4, 0.0, seed).relative for seed in (0, 1)]
    filtered = tmp_path / studies.Point("lift", "filtered-il", 4, 0.0, 0).relative
    _write_evals(recipe[0], 0, "eval", [0, 0, 1, 1])
    _write_evals(recipe[0], 1, "eval", [1, 1, 1, 0])  # start 3 lost, starts 0 and 1 gained
    _write_evals(recipe[0], 1, "plain", [0, 1, 1, 0, 1, 1])  # a longer evaluation: 4 pairs
    _write_evals(recipe[1], 0, "eval", [0, 0])
    _write_evals(recipe[1], 1, "eval", [0, 0])
    _write_evals(filtered, 0, "eval", [1, 0, 1, 1])
    _write_evals(filtered, 1, "eval", [0, 1, 0, 0])

    _, _, paired = studies.summarize(tmp_path, grid)
    with open(tmp_path / "summary_paired.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == PAIRED_COLUMNS
        assert len(list(reader)) == len(paired)

    def find(comparison, seed, preset="recipe", iteration=1):
        key = (comparison, seed, preset, iteration)
        [row] = [r for r in paired if (r["comparison"], r["seed"], r["preset"], r["iteration"]) == key]
        return row

    gain = find(LAST_VS_FIRST, 0)
    assert (gain["episodes"], gain["versus"], gain["versus_iteration"]) == (4, "recipe", 0)
    assert gain["difference"] == pytest.approx(0.25)
    assert gain["stderr"] == pytest.approx(paired_difference([0, 0, 1, 1], [1, 1, 1, 0])[1])
    alone = find(DEPLOYED_VS_ALONE, 0)
    assert alone["episodes"] == 4 and alone["difference"] == pytest.approx(0.25)
    versus = find(PRESET_VS_PRESET, 0)
    assert (versus["versus"], versus["difference"]) == ("filtered-il", pytest.approx(0.5))
    # Pooled over the seeds that have it: seed 1 gained nothing.
    pooled = find(LAST_VS_FIRST, "all")
    assert pooled["episodes"] == 6 and pooled["difference"] == pytest.approx(0.125)
    assert pooled["stderr"] == pytest.approx(math.hypot(gain["stderr"], 0.0) / 2)
    assert pooled["stderr_seeds"] == pytest.approx(0.125)
    assert math.isnan(find(PRESET_VS_PRESET, "all")["stderr_seeds"])  # filtered IL's seed 1 never ran
    # Iteration 0 had no "plain" evaluation: no pair for it.
    assert not [r for r in paired if r["comparison"] == DEPLOYED_VS_ALONE and r["iteration"] == 0]


def test_grid_layout_and_run_arguments(tmp_path):
    grid = studies.make_grid(
        algos="recipe,filtered-il", seeds=2, rollouts="4,8", ou_sigma="0,0.3", quick=True
    )
    assert (grid.iterations, grid.eval_episodes, grid.seeds) == (1, 4, (0, 1))
    points = grid.points()
    assert len(points) == 2 * 2 * 2 * 2 and len(set(points)) == len(points)
    assert [p.seed for p in points[:8]] == [0] * 8
    point = studies.Point("lift", "filtered-il", 8, 0.3, 1)
    assert point.relative == Path("runs/lift/filtered-il/M8_ou0.3/seed1")
    config = grid.point_config(point)
    assert (config.algo, config.quick, config.rollouts, config.ou_sigma, config.seed) == (
        "filtered-il",
        True,
        8,
        0.3,
        1,
    )
    args = grid.run_arguments(point, tmp_path / "run", tmp_path / "point.yaml")
    assert args == [
        "run",
        "lift",
        "--config",
        str(tmp_path / "point.yaml"),
        "--quiet",
        "--out",
        str(tmp_path / "run"),
    ]

    assert studies.open_study(tmp_path, grid) == grid
    assert studies.open_study(tmp_path) == grid
    assert studies.open_study(tmp_path, grid) == grid
    with pytest.raises(studies.BorlError, match="holds another study.*seeds"):
        studies.open_study(tmp_path, studies.make_grid(algos="recipe,filtered-il", seeds=3, quick=True))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algos", "recipe,magic"], "unknown preset 'magic'"),
        (["--tasks", "cube-juggling"], "unknown task 'cube-juggling'"),
        (["--rollouts", "50,,100"], "comma-separated"),
        (["--rollouts", "five"], "'five' is not a whole number"),
        (["--rollouts=-5,10"], "rollouts must not be negative"),
        (["--rollouts", "5,5"], "repeats"),
        (["--ou-sigma=-0.1"], "ou_sigma must not be negative"),
        (["--ou-sigma", "nan"], "finite"),
        (["--set", "rollouts=3"], "use --rollouts"),
        (["--set", "extraction.kind=awr"], "use --algos"),
        (["--set", "train.policy_steps=-1"], "train.policy_steps must not be negative"),
        (["--config", "/no/such/config.yaml"], "cannot read config /no/such/config.yaml"),
        (["--config", "{tmp}/no_preset.yaml"], "its axes (gaussian-il-none) are no preset"),
        (
            ["--config", "{tmp}/grid_key.yaml"],
            "seed: the study sets it for each run (use --seeds)",
        ),
    ],
)
def test_bad_study_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "study"
    (tmp_path / "no_preset.yaml").write_text(
        "policy_class: gaussian\nalgorithm: il\nextraction: {kind: none}\n"
    )
    (tmp_path / "grid_key.yaml").write_text("seed: 3\n")  # study configs: the files in tmp_path
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["study", "--quick", *args, "--out", str(out)]) == 2
    assert message in _error_line(capsys)
    assert not out.exists()


def test_bad_study_invocations(tmp_path, capsys):
    assert main(["study", "--quick"]) == 2
    assert "needs --out" in _error_line(capsys)
    assert main(["study", "--resume", str(tmp_path)]) == 2
    assert "not a study directory" in _error_line(capsys)
    studies.open_study(tmp_path, _grid())
    assert main(["study", "--resume", str(tmp_path), "--seeds", "2", "--quick"]) == 2
    assert "drop --seeds, --quick" in _error_line(capsys)
    assert main(["study", "--resume", str(tmp_path), "--config", "configs/square.yaml"]) == 2
    assert "drop --config" in _error_line(capsys)
    assert main(["study", "--quick", "--algos", "recipe", "--out", str(tmp_path)]) == 2
    assert "holds another study" in _error_line(capsys)
    with pytest.raises(SystemExit) as exit_info:
        main(["study", "--seeds", "-1", "--out", str(tmp_path)])
    assert exit_info.value.code == 2


def test_a_failing_run_does_not_stop_the_others(tmp_path):
    grid = _grid(seeds=(0,))
    directory = tmp_path / "study"
    studies.open_study(directory, grid)
    for point in grid.points():  # both runs fail at once in `borl resume`: an unreadable config
        (directory / point.relative).mkdir(parents=True)
        (directory / point.relative / "config.yaml").write_text("- not a mapping\n")
    held = directory / "logs" / f"{grid.points()[1].log_name}.lock"
    held.parent.mkdir()
    fd = os.open(held, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as if another study's process were running that point
    notes: list[str] = []
    try:
        failed = studies.run_study(directory, grid, parallel=2, echo=notes.append)
    finally:
        os.close(fd)
    assert sorted(failed, key=str) == sorted(grid.points(), key=str)
    assert "another process is running it" in " ".join(notes)
    log = (directory / "logs" / f"{grid.points()[0].log_name}.log").read_text()
    assert "borl resume" in log and "not a mapping" in log


def test_quick_study_runs_summarises_draws_and_resumes_at_once(tmp_path, capsys):
    out = tmp_path / "study"
    command = ["study", "--tasks", "lift", "--algos", "recipe", "--seeds", "1", "--quick", "--out", str(out)]
    assert main(command) == 0
    printed = capsys.readouterr().out
    run = out / "runs" / "lift" / "recipe" / "M4_ou0" / "seed0"
    assert (run / "config.yaml").exists() and (run / "checkpoints" / "iter_001").is_dir()
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["preset"], r["iteration"]) for r in rows] == [("recipe", "0"), ("recipe", "1")]
    with open(out / "summary_paired.csv") as f:
        comparisons = {(r["comparison"], r["seed"]) for r in csv.DictReader(f)}
    assert {(LAST_VS_FIRST, "0"), (LAST_VS_FIRST, "all"), (DEPLOYED_VS_ALONE, "all")} <= comparisons
    assert "paired on the same start states" in printed
    assert (out / "figures" / "fig3_success_vs_iteration_lift.png").stat().st_size > 0
    visitation = out / "figures" / "fig4_visitation_xz_lift.png"
    assert visitation.exists() or f"skipped {visitation.name}" in printed
    # scripts/merge_studies.py, given this study alone, writes exactly its summaries again.
    merged = tmp_path / "merged"
    subprocess.run([sys.executable, str(MERGE), str(out), "--out", str(merged)], check=True, timeout=120)
    for name in ("summary.csv", "summary_by_method.csv", "summary_paired.csv"):
        assert (merged / name).read_text() == (out / name).read_text()

    log = out / "logs" / "lift_recipe_M4_ou0_seed0.log"
    before = (log.read_text(), (run / "metrics.csv").stat().st_mtime_ns)
    for again in (command, ["study", "--resume", str(out)]):
        start = time.monotonic()
        assert main(again) == 0
        assert time.monotonic() - start < 30
        assert "1 of 1 runs finished" in capsys.readouterr().out
        assert (log.read_text(), (run / "metrics.csv").stat().st_mtime_ns) == before

    # The same grid as Ray tasks on a local Ray of 2 CPUs: the same episodes, hence the same summary.
    on_ray = tmp_path / "on_ray"
    assert main([*command[:-1], str(on_ray), "--backend", "ray"]) == 0
    with open(on_ray / "summary.csv") as f:
        assert list(csv.DictReader(f)) == rows
    assert "finished" in capsys.readouterr().out


def test_an_agent_that_acted_alone_counts_as_level_with_its_policy(tmp_path):
    grid = _grid(algos=("recipe",), seeds=(0,))
    studies.open_study(tmp_path, grid)
    run = tmp_path / studies.Point("lift", "recipe", 4, 0.0, 0).relative
    _write_evals(run, 0, "eval", [0, 1, 1])
    _write_evals(run, 1, "eval", [1, 1, 0])
    # Iteration 1's agent failed its gate (or came before extraction.from_iteration): no "plain" episodes.
    (run / "metrics" / "iter_001.json").write_text(json.dumps({"extracted": 0}))
    _, _, paired = studies.summarize(tmp_path, grid)
    rows = [r for r in paired if r["comparison"] == DEPLOYED_VS_ALONE and r["seed"] == 0]
    assert [(r["iteration"], r["episodes"], r["difference"]) for r in rows] == [(1, 3, 0.0)]


def test_pooled_over_seeds_averages_the_differences_and_adds_their_errors_in_quadrature():
    assert pooled_over_seeds([(0.1, 0.03), (0.3, 0.04)]) == pytest.approx((0.2, 0.025))
    assert all(math.isnan(v) for v in pooled_over_seeds([]))
