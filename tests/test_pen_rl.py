"""scripts/pen_rl.py, which trains pen's feedback expert: it writes weights the expert loads, and a run
stopped and started again goes on from its saved state exactly as one uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from borl.envs import get_task
from borl.envs.pen_policy import PenPolicyExpert
from borl.formats.robomimic import write_robomimic
from borl.rollout.demos import collect_demos

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pen_rl.py"
TASK = get_task("pen")


def train(demos: Path, out: Path, iterations: int) -> list[dict]:
    args = [str(demos), str(out), "--iterations", str(iterations), "--envs", "2", "--bc-steps", "20"]
    subprocess.run([sys.executable, str(SCRIPT), *args], check=True, capture_output=True, timeout=300)
    return [json.loads(line) for line in out.with_suffix(".log").read_text().splitlines()]


def test_trains_writes_weights_and_resumes_exactly(tmp_path: Path, env) -> None:
    # Any pen demonstrations in borl's layout will do for the cloning start; the feedback expert's are fast.
    demos = tmp_path / "demos.hdf5"
    write_robomimic(demos, collect_demos(TASK, 2, seed=0)[0], TASK.spec)
    whole = train(demos, tmp_path / "whole.pt", 12)
    train(demos, tmp_path / "split.pt", 10)
    split = train(demos, tmp_path / "split.pt", 12)

    assert [r["iteration"] for r in split] == list(range(12))
    for a, b in zip(whole, split, strict=True):
        assert (a["return"], a["std"], a.get("success_mean_action")) == (
            b["return"],
            b["std"],
            b.get("success_mean_action"),
        )
    expert = PenPolicyExpert(env, np.random.default_rng(0), 0.1, tmp_path / "whole.pt")
    action = expert.act(env.reset(0))
    assert action.shape == (24,) and np.abs(action).max() <= 1.0
