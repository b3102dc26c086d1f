"""Retraining one iteration of a finished run on exactly its data with other settings (an ablation,
`borl retrain`): a new run directory holding the source's episodes up to that iteration and its
results before it, so that executing it retrains and evaluates that iteration alone."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from borl.config import RunConfig, save_config
from borl.errors import BorlError
from borl.files import ensure_writable_directory
from borl.loop import Run
from borl.run_directory import checkpoint_name

# Settings that decide which episodes a run holds; a retraining must keep them.
DATA_KEYS = ("task", "dataset", "demos", "demo_noise", "horizon", "rollouts", "ou_sigma", "ou_theta")


def branch(source: Run, iteration: int, directory: Path, config: RunConfig) -> Run:
    """A new run holding `source`'s episodes up to `iteration` and its results before it, so that
    executing it retrains and evaluates iteration `iteration` alone under `config`, on exactly the
    same data: an ablation with everything else held fixed.

    Settings that define the data (task, D0, horizon, rollouts, noise) must be the source's.
    """
    if iteration not in source.completed_iterations():
        done = source.completed_iterations()
        raise BorlError(f"{source.directory} has not completed iteration {iteration} (done: {done})")
    for key in DATA_KEYS:
        if getattr(config, key) != getattr(source.config, key):
            raise BorlError(f"{key} defines the data: a retraining keeps the source run's")
    if directory.is_dir() and any(directory.iterdir()):
        raise BorlError(f"{directory} exists and is not empty: choose another --out")
    ensure_writable_directory(directory, "the retraining's run directory")
    for earlier in range(iteration + 1):
        name = checkpoint_name(earlier)
        shutil.copytree(source.directory / "data" / name, directory / "data" / name)
        if earlier < iteration:
            shutil.copytree(source.checkpoint(earlier), directory / "checkpoints" / name)
            shutil.copytree(source.directory / "eval" / name, directory / "eval" / name)
            (directory / "metrics").mkdir(exist_ok=True)
            shutil.copy2(source.metrics_file(earlier), directory / "metrics" / f"{name}.json")
    run = Run(directory, replace(config, iterations=iteration))
    save_config(run.config, directory / "config.yaml")
    return run
