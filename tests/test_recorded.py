"""The same seeds give the same episodes as before the architecture's rework: a quick study on real
Lift against episodes recorded at commit 6a72d8e (tests/recorded/quick_lift_study.json)."""

import json
from pathlib import Path

import numpy as np
import pytest

from borl.cli import main
from borl.data.store import EpisodeStore, decode_episode

RECORDED = Path(__file__).parent / "recorded" / "quick_lift_study.json"


def digest(run: Path) -> dict:
    """Each stored episode's seed, length, outcome, first action and action sum, in file order."""
    episodes = []
    for store in ("data", "eval"):
        for path in EpisodeStore(run / store).paths():
            episode = decode_episode(path)
            episodes.append(
                {
                    "file": f"{store}/{path.parent.name}/{path.name}",
                    "seed": episode.lineage.seed,
                    "steps": len(episode.actions),
                    "success": episode.success,
                    "action_sum": float(np.asarray(episode.actions, np.float64).sum()),
                    "first_action": [float(x) for x in episode.actions[0]],
                }
            )
    return {"episodes": episodes}


def test_a_quick_study_repeats_the_recorded_episodes(tmp_path):
    recorded = json.loads(RECORDED.read_text())["runs"]
    out = tmp_path / "study"
    args = ["study", "--tasks", "lift", "--algos", "recipe,filtered-il", "--seeds", "1", "--quick"]
    assert main([*args, "--out", str(out)]) == 0
    for point, expected in recorded.items():
        got = digest(out / "runs" / point)["episodes"]
        assert [e["file"] for e in got] == [e["file"] for e in expected["episodes"]], point
        for mine, theirs in zip(got, expected["episodes"], strict=True):
            where = f"{point} {theirs['file']}"
            assert (mine["seed"], mine["steps"], mine["success"]) == (
                theirs["seed"],
                theirs["steps"],
                theirs["success"],
            ), where
            # Another CPU's kernels round the last bits differently (this machine's rounding repeats
            # exactly): the first action matches closely, while in closed loop over up to 80 steps the
            # difference compounds (an EPYC of another generation summed -58.0847 for -58.1346), so
            # the sum is compared to 0.5%; a change of behaviour moves the first action and the sums
            # by far more.
            assert mine["first_action"] == pytest.approx(theirs["first_action"], abs=1e-4), where
            assert mine["action_sum"] == pytest.approx(theirs["action_sum"], rel=5e-3, abs=1e-3), where
