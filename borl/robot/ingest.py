"""A robot run's iterations: recordings checked and added as the next iteration's data (`borl
ingest`), and that iteration trained without a simulator (`borl train`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np

from borl.agent import checkpoint_id
from borl.config import RunConfig, save_config
from borl.data.episode import Episode
from borl.errors import BorlError
from borl.eval.stats import success_rate
from borl.formats.robomimic import demo_attributes, read_robomimic
from borl.logger import Logger
from borl.loop import Run
from borl.run_directory import METRIC_COLUMNS, checkpoint_name

SOURCES = ("robot", "demo")


def trained_iterations(run: Run) -> list[int]:
    """Iterations whose checkpoint exists, in order."""
    root = run.directory / "checkpoints"
    names = [p.name for p in root.glob("iter_*") if (p / "agent.json").exists()] if root.is_dir() else []
    return sorted(int(name[5:]) for name in names if name[5:].isdigit())


def next_iteration(run: Run) -> int:
    trained = trained_iterations(run)
    return trained[-1] + 1 if trained else 0


def episode_fingerprint(episode: Episode) -> str:
    """What makes a recorded episode itself: a hash of its observations and actions."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(episode.observations, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(episode.actions, dtype=np.float32).tobytes())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class IngestReport:
    iteration: int
    added: int
    skipped: int
    successes: int


def _checked(run: Run, path: Path, source: str, checkpoints: dict[str, int]) -> list[Episode]:
    """The episodes of one file, or a BorlError naming the file and what is wrong with it."""
    readable = path.is_file() and h5py.is_hdf5(path)
    attributes = demo_attributes(path) if readable else []
    if source == "robot":
        for index, attrs in enumerate(attributes):
            if "success" not in attrs:
                raise BorlError(
                    f"{path}: data/demo_{index}: no success label "
                    "(record with `borl drive` or EpisodeRecorder)"
                )
    episodes = read_robomimic(path, run.task.spec)  # the file itself, keys, shapes, NaN
    for index, (episode, attrs) in enumerate(zip(episodes, attributes, strict=True)):
        where = f"{path}: data/demo_{index}"
        largest = float(np.abs(episode.actions).max())
        if largest > 1.0 + 1e-6:
            raise BorlError(f"{where}: actions outside [-1, 1] (max |a| = {largest:.3g})")
        if source == "demo":
            continue
        recorded = attrs.get("recording", {})
        if recorded.get("checkpoint_id") not in checkpoints:
            raise BorlError(
                f"{where}: recorded by checkpoint {recorded.get('checkpoint')} "
                f"({recorded.get('checkpoint_id')}), which is not one of {run.directory}'s "
                "(use --source demo for new demonstrations)"
            )
    return episodes


def ingest(run: Run, files: list[Path], source: str = "robot") -> IngestReport:
    """Check every file, then add their episodes as the next iteration's data. A bad file refuses the
    whole ingestion before anything is written; an episode already in the run is skipped."""
    if source not in SOURCES:
        raise BorlError(f"unknown source '{source}' (known: {', '.join(SOURCES)})")
    iteration = next_iteration(run)
    if iteration == 0:
        raise BorlError(f"{run.directory} has no trained iteration 0 yet: `borl train {run.directory}` first")
    checkpoints = {checkpoint_id(run.checkpoint(i)): i for i in trained_iterations(run)}
    incoming = [episode for path in files for episode in _checked(run, Path(path), source, checkpoints)]
    present = {e.lineage.recording for e in run.data.iter_episodes() if e.lineage.recording}
    store, added, skipped = run.data, 0, 0
    next_index = max(store.indices(iteration, source), default=-1) + 1
    for episode in incoming:
        fingerprint = episode_fingerprint(episode)
        if fingerprint in present:
            skipped += 1
            continue
        lineage = replace(
            episode.lineage,
            source=source,
            iteration=iteration,
            index=next_index,
            recording=fingerprint,
            checkpoint=None if source == "demo" else episode.lineage.checkpoint,
        )
        store.append(replace(episode, lineage=lineage))
        present.add(fingerprint)
        next_index += 1
        added += 1
    successes = sum(e.success for e in incoming)
    return IngestReport(iteration, added, skipped, successes)


def check_without_simulator(config: RunConfig) -> None:
    """Raise a BorlError for settings that need a simulator, which the robot loop does not have."""
    if config.extraction.gate_episodes > 0:
        raise BorlError(
            "extraction.gate_episodes acts its episodes in a simulator, and the robot loop has none: "
            "drop it (or measure with `borl eval` on a simulated run)"
        )


def train_next(run: Run, logger: Logger) -> dict:
    """Train the next iteration on all data (D0 and everything ingested), write its checkpoint and
    its metrics row (no evaluation columns: there is no simulator); returns the row."""
    iteration = next_iteration(run)
    if iteration == 0:
        run.ensure_demos(logger)
    else:
        batch = [e for e in run.data.load(iteration) if e.lineage.source in SOURCES]
        if not batch:
            raise BorlError(
                f"no new episodes for iteration {iteration}: `borl ingest {run.directory} FILE` first"
            )
    if run.config.iterations < iteration:
        run.config = replace(run.config, iterations=iteration)
        save_config(run.config, run.directory / "config.yaml")
    info = run.train(iteration, logger)
    recorded = run.data.load(iteration, "robot") if iteration > 0 else []
    nan = float("nan")
    row = {key: "" for key in METRIC_COLUMNS}  # selection stats: measured on evaluation episodes only
    row.update(
        iteration=iteration,
        eval_success_rate=nan,
        eval_stderr=nan,
        eval_episodes=0,
        policy_only_success_rate=nan,
        policy_only_stderr=nan,
        rollout_success_rate=success_rate([e.success for e in recorded])[0],
        rollouts=len(recorded),
        env_steps=sum(len(e) for e in recorded),
        transitions=int(info["transitions"]),
        train_seconds=round(info["train_seconds"], 2),
        collect_seconds=0.0,
        eval_seconds=0.0,
    )
    run.record_metrics(iteration, row)
    logger.metrics(iteration, row)
    row["checkpoint"] = checkpoint_name(iteration)
    return row
