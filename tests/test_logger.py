"""The one logger: training curves and metrics to TensorBoard event files and an offline W&B run, read
back; non-numbers dropped; an unknown output refused in one line."""

import csv
import struct
from pathlib import Path

import pytest
from tensorboardX.proto import event_pb2

from borl.cli import main
from borl.logger import Logger

SMALL = ["--quick", "--quiet", "--workers", "1", "--eval-episodes", "2", "--rollouts", "2"]


def tensorboard_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a TensorBoard event file (TFRecord: length, its CRC, the event, the event's CRC)."""
    (path,) = directory.glob("events.out.tfevents.*")
    data, offset, scalars = path.read_bytes(), 0, {}
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[offset + 12 : offset + 12 + length])
        offset += 12 + length + 4
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


class Recorder:
    def __init__(self) -> None:
        self.calls = []

    def scalars(self, values, axis, step) -> None:
        self.calls.append((axis, step, values))

    def close(self) -> None:
        self.calls.append("closed")


def test_curves_follow_each_other_and_non_numbers_are_dropped():
    recorder = Recorder()
    with Logger(progress=False, outputs=[recorder]) as logger:
        logger.curves(200, [{"phase": "critic", "step": 10, "q_loss": 0.5}])
        logger.metrics(
            2, {"iteration": 2, "eval_success_rate": float("nan"), "rollouts": 4, "checkpoint": "x"}
        )
    assert recorder.calls == [
        ("train_step", 210, {"train/critic/q_loss": 0.5}),
        ("iteration", 2, {"iteration/rollouts": 4.0}),
        "closed",
    ]


def test_a_run_logs_to_tensorboard_and_offline_wandb(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    out = tmp_path / "run"
    assert main(["run", "lift", *SMALL, "--log", "tensorboard,wandb", "--out", str(out)]) == 0
    scalars = tensorboard_scalars(out / "logs" / "tensorboard")
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert scalars["iteration/eval_success_rate"] == [
        (int(r["iteration"]), pytest.approx(float(r["eval_success_rate"]))) for r in rows
    ]
    steps = [step for step, _ in scalars["train/critic/q_loss"]]
    assert steps == sorted(steps) and len(steps) >= 2 and steps[-1] >= 60  # iteration 1's follow 0's
    (record,) = (out / "logs" / "wandb").glob("offline-run-*/run-*.wandb")
    written = record.read_bytes()
    assert b"iteration/eval_success_rate" in written and b"train/policy/policy_loss" in written


def test_an_unknown_output_is_one_line(tmp_path, capsys):
    assert main(["run", "lift", *SMALL, "--log", "tensorboard,mlflow", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown log output 'mlflow' (known: tensorboard, wandb)" in err
    assert not (tmp_path / "r").exists()
