"""A study: a grid of ordinary runs (tasks x presets x rollouts M x OU noise x seeds), its summary
tables and the paper's figures.

A study directory:

    DIR/study.yaml                                  the grid (what `--resume` and `borl plot` read)
    DIR/runs/<task>/<preset>/M<m>_ou<x>/seed<s>/    one `borl run` directory per grid point
    DIR/configs/<task>_<preset>_M<m>_ou<x>_seed<s>.yaml the resolved config each run starts from
    DIR/logs/<task>_<preset>_M<m>_ou<x>_seed<s>.log  each run's output, appended on every attempt
    DIR/summary.csv                                 one row per run and iteration
    DIR/summary_by_method.csv                       over seeds: mean, s.e., bootstrap 95% interval
    DIR/summary_paired.csv                          differences on the same start states, paired
                                                    s.e. (borl/study_paired.py)
    DIR/figures/*.png                               Figures 3-8 of the paper, as far as the grid allows

Each grid point runs in its own `python -m borl run|resume` process, so a crash in one run leaves the
others going, and a run's own checkpointing makes the whole study resumable: finished runs are
skipped, unfinished ones resumed.
"""

from __future__ import annotations

import csv
import fcntl
import itertools
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import yaml

from borl.config import PRESETS, RunConfig, build_config, parse_assignments, save_config
from borl.errors import BorlError, one_line
from borl.eval.stats import bootstrap_ci, mean_and_stderr
from borl.files import atomic_path, ensure_writable_directory, write_atomic
from borl.study_paired import PAIRED_COLUMNS, paired_rows
from borl.study_point import Point

if TYPE_CHECKING:
    from borl.study_ray import RayProcess

STUDY_FILE = "study.yaml"

SUMMARY_COLUMNS = [
    "task",
    "preset",
    "rollouts",
    "ou_sigma",
    "seed",
    "iteration",
    "success_rate",
    "stderr",
    "episodes",
    "policy_only_success_rate",
    "rollout_success_rate",
    "env_steps",
]

BY_METHOD_COLUMNS = [
    "task",
    "preset",
    "rollouts",
    "ou_sigma",
    "iteration",
    "seeds",
    "episodes",
    "mean",
    "stderr",
    "ci_low",
    "ci_high",
]

# Keys that the grid itself sets for each run, or that would make a run's preset name untrue.
_GRID_KEYS = {
    "task": "--tasks",
    "algo": "--algos",
    "seed": "--seeds",
    "rollouts": "--rollouts",
    "ou_sigma": "--ou-sigma",
    "iterations": "--iterations",
    "eval_episodes": "--eval-episodes",
    "quick": "--quick",
    "workers": "--workers",
    "policy_class": "--algos",
    "algorithm": "--algos",
}

BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class StudyGrid:
    """The grid of a study; saved as DIR/study.yaml. `overrides` are `--set` assignments for every run."""

    tasks: tuple[str, ...]
    algos: tuple[str, ...]
    seeds: tuple[int, ...]
    rollouts: tuple[int, ...]
    ou_sigma: tuple[float, ...]
    iterations: int
    eval_episodes: int
    quick: bool = False
    workers: int | None = None
    overrides: tuple[str, ...] = ()

    def points(self) -> list[Point]:
        """Every run, seed first: an interrupted study has whole seeds of every method to compare."""
        return [
            Point(task, preset, m, x, seed)
            for seed, task, m, x, preset in itertools.product(
                self.seeds, self.tasks, self.rollouts, self.ou_sigma, self.algos
            )
        ]

    def point_config(self, point: Point) -> RunConfig:
        """The resolved config of `point`'s run: its preset, the grid's values for it, the overrides."""
        settings = parse_assignments(list(self.overrides))
        return build_config(point.preset, self.quick, self.config_flags(point), settings)

    def run_arguments(self, point: Point, directory: Path, config_file: Path) -> list[str]:
        """`borl run` arguments that start the run of `point` in `directory` from its config file
        (`point_config`, written there by the study): the run gets the config itself, not flags
        rebuilt from it."""
        return ["run", point.task, "--config", str(config_file), "--quiet", "--out", str(directory)]

    def config_flags(self, point: Point) -> dict[str, Any]:
        return {
            "task": point.task,
            "iterations": self.iterations,
            "rollouts": point.rollouts,
            "eval_episodes": self.eval_episodes,
            "seed": point.seed,
            "ou_sigma": point.ou_sigma,
            "workers": self.workers,
        }

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyGrid:
        names = {f.name for f in fields(cls)}
        if set(data) - names or {"tasks", "algos", "seeds", "rollouts", "ou_sigma"} - set(data):
            raise BorlError(f"study grid keys {sorted(data)} are not {sorted(names)}")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def parse_list(text: str, name: str, kind: type) -> tuple:
    """Comma-separated values of one kind, each given once (e.g. `--rollouts 50,100,200`); their
    limits are the config's, checked when each point's config is built."""
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise BorlError(f"{name} needs comma-separated values like a,b (got '{text}')")
    values = []
    for item in items:
        try:
            value = kind(item)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise BorlError(f"{name}: '{item}' is not {what}") from None
        if kind is float and not math.isfinite(value):
            raise BorlError(f"{name}: '{item}' is not a finite number")
        values.append(value)
    if len(set(values)) != len(values):
        raise BorlError(f"{name} repeats a value (got '{text}')")
    return tuple(values)


def make_grid(
    tasks: str | None = None,
    algos: str | None = None,
    seeds: int | None = None,
    iterations: int | None = None,
    rollouts: str | None = None,
    eval_episodes: int | None = None,
    ou_sigma: str | None = None,
    quick: bool = False,
    workers: int | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> StudyGrid:
    """The grid the `borl study` flags describe, with unset values taken from the run defaults.

    Every run's config is built and validated here, so bad input fails before anything runs.
    """
    from borl.envs.registry import get_task

    settings = parse_assignments(list(overrides))
    for key in settings:
        if key in _GRID_KEYS:
            raise BorlError(f"{key}: the study sets it for each run (use {_GRID_KEYS[key]})")
    if isinstance(settings.get("extraction"), dict) and "kind" in settings["extraction"]:
        raise BorlError("extraction.kind: a study's presets fix the axes (use --algos)")
    presets = parse_list(algos or "recipe", "--algos", str)
    for preset in presets:
        if preset not in PRESETS:
            raise BorlError(f"unknown preset '{preset}' (known: {', '.join(PRESETS)})")
    task_names = parse_list(tasks or "lift", "--tasks", str)
    for task in task_names:
        get_task(task)
    if seeds is not None and seeds < 1:
        raise BorlError(f"--seeds must be at least 1 (got {seeds})")
    defaults = build_config(presets[0], quick, {"workers": workers}, settings)
    grid = StudyGrid(
        tasks=task_names,
        algos=presets,
        seeds=tuple(range(3 if seeds is None else seeds)),
        rollouts=parse_list(rollouts, "--rollouts", int) if rollouts else (defaults.rollouts,),
        ou_sigma=parse_list(ou_sigma, "--ou-sigma", float) if ou_sigma else (defaults.ou_sigma,),
        iterations=defaults.iterations if iterations is None else iterations,
        eval_episodes=defaults.eval_episodes if eval_episodes is None else eval_episodes,
        quick=quick,
        workers=workers,
        overrides=tuple(overrides),
    )
    for point in grid.points():
        grid.point_config(point)
    return grid


def is_study(directory: Path) -> bool:
    return (directory / STUDY_FILE).is_file()


def open_study(directory: Path, grid: StudyGrid | None = None) -> StudyGrid:
    """The study in `directory`: its saved grid (grid None), or `grid`, saved on first use.

    Re-running the same `borl study` command resumes it; a different grid for an existing study is
    refused rather than mixing two grids in one directory.
    """
    path = directory / STUDY_FILE
    if not path.exists():
        if grid is None:
            raise BorlError(f"{directory} is not a study directory (no {STUDY_FILE})")
        ensure_writable_directory(directory, "the study directory")
        write_atomic(path, yaml.safe_dump(grid.to_dict(), sort_keys=False))
        return grid
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise BorlError(f"cannot read {path}: {one_line(error)}") from None
    if not isinstance(data, dict):
        raise BorlError(f"{path} is not a mapping")
    saved = StudyGrid.from_dict(data)
    if grid is not None and grid != saved:
        mine, theirs = grid.to_dict(), saved.to_dict()
        differ = ", ".join(f"{k} {theirs[k]} there, {mine[k]} here" for k in mine if mine[k] != theirs[k])
        raise BorlError(
            f"{directory} holds another study ({differ}): use `borl study --resume {directory}` "
            "or another --out"
        )
    return saved


def default_parallel(grid: StudyGrid) -> int:
    """Runs at once: one per `workers` cores (2 by default), as each run collects on that many processes."""
    per_run = grid.workers or build_config("recipe", grid.quick).workers
    return max(1, len(os.sched_getaffinity(0)) // per_run)


def run_finished(run_directory: Path) -> bool:
    """Whether the run has finished every iteration (as `borl resume` would find it)."""
    from borl.loop import Run

    if not (run_directory / "config.yaml").exists():
        return False
    try:
        run = Run.open(run_directory)
    except BorlError:
        return False  # its `borl resume` will fail and say why in the run's log
    return len(run.completed_iterations()) == run.config.iterations + 1


def _first_and_last(run_directory: Path) -> str:
    rows = _read_metrics(run_directory)
    if not rows:
        return ""
    first, last = rows[0], rows[-1]
    return (
        f", success {float(first['eval_success_rate']):.0%} at iteration {first['iteration']}"
        f" -> {float(last['eval_success_rate']):.0%} at iteration {last['iteration']}"
    )


@dataclass
class _Running:
    point: Point
    process: subprocess.Popen | RayProcess
    log: IO[str]
    lock: int
    started: float


def _lock(path: Path) -> int | None:
    """An exclusive lock on `path`, or None while another process (a run still going) holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


Launch = Callable[[list[str], IO[str], int], "subprocess.Popen | RayProcess"]


def launch_here(args: list[str], log: IO[str], lock: int) -> subprocess.Popen:
    """A grid point's `python -m borl ...` process on this machine; it inherits the point's lock."""
    command = [sys.executable, "-m", "borl", *args]
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=(lock,)
    )


def _start(directory: Path, grid: StudyGrid, point: Point, launch: Launch) -> _Running | None:
    """Start (or resume) one run in its own process; None if another process is running it.

    The run's process inherits the lock, so the lock lasts as long as the run even if the study dies.
    """
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    lock = _lock(logs / f"{point.log_name}.lock")
    if lock is None:
        return None
    run_directory = (directory / point.relative).resolve()
    if (run_directory / "config.yaml").exists():
        args = ["resume", str(run_directory), "--quiet"]
    else:
        config_file = directory / "configs" / f"{point.log_name}.yaml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        save_config(grid.point_config(point), config_file)
        args = grid.run_arguments(point, run_directory, config_file)
    log = open(logs / f"{point.log_name}.log", "a")  # noqa: SIM115 - closed when the run ends
    log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')}: borl {' '.join(args)}\n")
    log.flush()
    return _Running(point, launch(args, log, lock), log, lock, time.monotonic())


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_study(
    directory: Path,
    grid: StudyGrid,
    parallel: int,
    echo: Callable[[str], None] = print,
    launch: Launch = launch_here,
) -> list[Point]:
    """Run every unfinished point of the grid, `parallel` at a time, each a process that `launch`
    starts (here, or a Ray task: borl/study_ray.py); returns the points that failed.

    A failed run does not stop the others; its log says why, and the next `--resume` retries it.
    """
    points = grid.points()
    todo = [p for p in points if not run_finished(directory / p.relative)]
    echo(
        f"study {directory}: {len(points) - len(todo)} of {len(points)} runs finished"
        + (f", {len(todo)} to run, {parallel} at a time" if todo else "")
    )
    failed: list[Point] = []
    running: list[_Running] = []
    queue = list(todo)
    done = len(points) - len(todo)
    try:
        while queue or running:
            while queue and len(running) < parallel:
                point = queue.pop(0)
                started = _start(directory, grid, point, launch)
                if started is None:
                    echo(f"  {point.label}: another process is running it; left to that process")
                    failed.append(point)
                    continue
                running.append(started)
                echo(f"  {point.label}: started (log: {started.log.name})")
            time.sleep(0.2)
            for job in [job for job in running if job.process.poll() is not None]:
                running.remove(job)
                job.log.close()
                os.close(job.lock)
                done += 1
                seconds = time.monotonic() - job.started
                if job.process.returncode == 0:
                    result = _first_and_last(directory / job.point.relative)
                    echo(f"[{done}/{len(points)}] {job.point.label}: finished in {seconds:.0f} s{result}")
                else:
                    failed.append(job.point)
                    echo(
                        f"[{done}/{len(points)}] {job.point.label}: FAILED (exit {job.process.returncode}) "
                        f"after {seconds:.0f} s: {_last_line(Path(job.log.name))}"
                    )
    except KeyboardInterrupt:
        echo(f"study interrupted: continue it with `borl study --resume {directory}`")
        raise
    finally:
        for job in running:
            job.process.terminate()
            job.process.wait()
            job.log.close()
            os.close(job.lock)
    return failed


def _read_metrics(run_directory: Path) -> list[dict[str, str]]:
    path = run_directory / "metrics.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def summary_rows(directory: Path, grid: StudyGrid) -> list[dict[str, Any]]:
    """One row per (task, preset, M, noise, seed, iteration) that the study's runs have finished."""
    rows = []
    points = sorted(
        grid.points(),
        key=lambda p: (grid.tasks.index(p.task), grid.algos.index(p.preset), p.rollouts, p.ou_sigma, p.seed),
    )
    for point in points:
        for metric in _read_metrics(directory / point.relative):
            rows.append(
                {
                    "task": point.task,
                    "preset": point.preset,
                    "rollouts": point.rollouts,
                    "ou_sigma": point.ou_sigma,
                    "seed": point.seed,
                    "iteration": int(metric["iteration"]),
                    "success_rate": float(metric["eval_success_rate"]),
                    "stderr": float(metric["eval_stderr"]),
                    "episodes": int(metric["eval_episodes"]),
                    "policy_only_success_rate": float(metric["policy_only_success_rate"]),
                    "rollout_success_rate": float(metric["rollout_success_rate"]),
                    "env_steps": int(metric["env_steps"]),
                }
            )
    return rows


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Over seeds, per (task, preset, M, noise, iteration): mean of the seeds' success rates, its
    standard error over seeds (NaN with one seed) and a bootstrap 95% interval (`bootstrap_ci`)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        key = (row["task"], row["preset"], row["rollouts"], row["ou_sigma"], row["iteration"])
        groups[key].append(row)
    table = []
    for (task, preset, rollouts, ou_sigma, iteration), group in groups.items():
        episodes = [r["episodes"] for r in group]
        successes = [round(r["success_rate"] * r["episodes"]) for r in group]
        mean, stderr = mean_and_stderr([r["success_rate"] for r in group])
        low, high = bootstrap_ci(successes, episodes, seed=BOOTSTRAP_SEED)
        table.append(
            {
                "task": task,
                "preset": preset,
                "rollouts": rollouts,
                "ou_sigma": ou_sigma,
                "iteration": iteration,
                "seeds": len(group),
                "episodes": sum(episodes),
                "mean": mean,
                "stderr": stderr,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return table


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def summarize(directory: Path, grid: StudyGrid) -> tuple[list[dict[str, Any]], ...]:
    """Write DIR/summary.csv, DIR/summary_by_method.csv and DIR/summary_paired.csv; returns their rows."""
    rows = summary_rows(directory, grid)
    table = aggregate(rows)
    paired = paired_rows(directory, grid.points(), grid.iterations)
    write_csv(directory / "summary.csv", SUMMARY_COLUMNS, rows)
    write_csv(directory / "summary_by_method.csv", BY_METHOD_COLUMNS, table)
    write_csv(directory / "summary_paired.csv", PAIRED_COLUMNS, paired)
    return rows, table, paired


def visitation(directory: Path, grid: StudyGrid, task: str) -> tuple[dict[str, np.ndarray], str]:
    """End-effector positions along every successful rollout of each preset (all seeds and
    iterations) at the grid's largest M and smallest noise; and a caption saying so."""
    from borl.data.store import EpisodeStore
    from borl.envs.registry import get_task
    from borl.eval.figures import eef_slice

    rollouts, noise = max(grid.rollouts), min(grid.ou_sigma)
    eef = eef_slice(get_task(task).spec.obs_keys)
    positions: dict[str, np.ndarray] = {}
    if eef is None:
        return positions, f"task {task} has no end-effector position in its observations"
    for preset in grid.algos:
        chunks = []
        for seed in grid.seeds:
            store = EpisodeStore(directory / Point(task, preset, rollouts, noise, seed).relative / "data")
            chunks += [e.observations[:, eef] for e in store.iter_episodes(source="rollout") if e.success]
        if chunks:
            positions[preset] = np.concatenate(chunks)
    return positions, f"successful rollouts, M={rollouts}, OU σ={noise:g}, all iterations and seeds"


def draw(
    directory: Path, grid: StudyGrid, table: list[dict[str, Any]], note: Callable[[str], None] = print
) -> list[Path]:
    """Draw the study's figures into DIR/figures/; a figure the grid cannot support is skipped with a note."""
    from borl.eval.figures import draw_study_figures

    visits = {task: visitation(directory, grid, task) for task in grid.tasks}
    return draw_study_figures(table, visits, directory / "figures", note)
