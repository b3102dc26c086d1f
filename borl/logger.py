"""Where a run reports: progress bars on the terminal (unless quiet), and each iteration's training
curves and metrics to TensorBoard and Weights & Biases when asked (`--log tensorboard,wandb`).

One Logger is made per command and passed down once; everything that shows progress or records a
number goes through it. The run directory's own files (DIR/curves/iter_K.csv, metrics.csv) are
written by the run itself, whatever the logger's outputs.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from borl.errors import BorlError


class Output(Protocol):
    """One place the numbers go (a dashboard's writer)."""

    def scalars(self, values: dict[str, float], axis: str, step: int) -> None: ...

    def close(self) -> None: ...


class Logger:
    """Progress bars and the outputs; a Logger() shows bars and writes nothing else."""

    def __init__(self, progress: bool = True, outputs: Sequence[Output] = ()) -> None:
        self.show_progress = progress
        self.outputs = list(outputs)

    def bar(self, total: int, description: str, unit: str, initial: int = 0) -> tqdm:
        """A progress bar (a silent one when quiet); use it as a context manager."""
        return tqdm(total=total, initial=initial, desc=description, unit=unit, disable=not self.show_progress)

    def message(self, text: str) -> None:
        if self.show_progress:
            tqdm.write(text)

    def curves(self, first_step: int, rows: Sequence[dict]) -> None:
        """An iteration's training curves (rows of phase, step and losses), on the axis `train_step`:
        first_step (the updates of the iterations before) + step, so every iteration's curve follows
        the last's however many updates each ran."""
        for row in rows:
            values = {f"train/{row['phase']}/{k}": v for k, v in row.items() if k not in ("phase", "step")}
            self._scalars(values, "train_step", first_step + int(row["step"]))

    def metrics(self, iteration: int, row: dict) -> None:
        """An iteration's metrics row (success rates, timing, selection), on the axis `iteration`."""
        values = {f"iteration/{k}": v for k, v in row.items() if k != "iteration"}
        self._scalars(values, "iteration", iteration)

    def _scalars(self, values: dict[str, Any], axis: str, step: int) -> None:
        numbers = {}
        for key, value in values.items():
            if isinstance(value, bool | int | float) and math.isfinite(float(value)):
                numbers[key] = float(value)
        for output in self.outputs:
            output.scalars(numbers, axis, step)

    def close(self) -> None:
        for output in self.outputs:
            output.close()
        self.outputs = []

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TensorBoardOutput:
    """Event files in DIR/logs/tensorboard (`tensorboard --logdir DIR/logs/tensorboard`)."""

    def __init__(self, directory: Path) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise BorlError("--log tensorboard needs tensorboardX: pip install 'borl[logging]'") from None
        self.writer = SummaryWriter(str(directory))

    def scalars(self, values: dict[str, float], axis: str, step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class WandbOutput:
    """A Weights & Biases run in DIR/logs/wandb; offline unless WANDB_MODE says otherwise (sync an
    offline run later with `wandb sync DIR/logs/wandb/offline-run-*`)."""

    def __init__(self, directory: Path, name: str, config: dict) -> None:
        try:
            import wandb
        except ImportError:
            raise BorlError("--log wandb needs wandb: pip install 'borl[logging]'") from None
        directory.mkdir(parents=True, exist_ok=True)
        mode = os.environ.get("WANDB_MODE", "offline")
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "borl"),
            name=name,
            dir=str(directory),
            mode=mode,
            config=config,
        )
        for axis in ("train_step", "iteration"):
            self.run.define_metric(axis)
        self.run.define_metric("train/*", step_metric="train_step")
        self.run.define_metric("iteration/*", step_metric="iteration")

    def scalars(self, values: dict[str, float], axis: str, step: int) -> None:
        if values:
            self.run.log({axis: step, **values})

    def close(self) -> None:
        self.run.finish()


# `--log NAME[,NAME]`: each output by name, made from the run's directory and config.
OUTPUTS: dict[str, Callable[[Path, Any], Output]] = {
    "tensorboard": lambda directory, config: TensorBoardOutput(directory / "logs" / "tensorboard"),
    "wandb": lambda directory, config: WandbOutput(
        directory / "logs", directory.name, dataclasses.asdict(config)
    ),
}


def check_outputs(names: Sequence[str]) -> None:
    for name in names:
        if name not in OUTPUTS:
            raise BorlError(f"unknown log output '{name}' (known: {', '.join(OUTPUTS)})")


def run_logger(directory: Path, config: Any, progress: bool) -> Logger:
    """The logger of a run in `directory`: bars unless quiet, and the outputs config.log names."""
    check_outputs(config.log)
    outputs: list[Output] = []
    try:
        for name in config.log:
            outputs.append(OUTPUTS[name](directory, config))
    except BaseException:
        Logger(outputs=outputs).close()
        raise
    return Logger(progress, outputs)
