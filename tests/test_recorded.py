"""The same seeds give the same episodes as before the architecture's rework: a quick study on real
Lift against episodes recorded at commit 6a72d8e (tests/recorded/quick_lift_study.json).

Float kernels round differently from one CPU model to another (oneDNN's and MKL's blocking follows the
ISA and the caches), and in closed loop over training and 80-step episodes those last bits grow into
different actions, so episodes repeat exactly only on the kind of CPU they were recorded on. The file
holds one record per kind (`kernels()`); `scripts/record_episodes.sh` adds this machine's, made by
6a72d8e's own code."""

import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from borl.data.store import EpisodeStore, decode_episode

RECORDED = Path(__file__).parent / "recorded" / "quick_lift_study.json"
STUDY = ["study", "--tasks", "lift", "--algos", "recipe,filtered-il", "--seeds", "1", "--quick"]


def kernels() -> str:
    """The kind of CPU the float kernels run on: vendor, family and model, and torch's ISA level."""
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    cpu = (
        "/".join(fields.get(k, "?") for k in ("vendor_id", "cpu family", "model"))
        if fields
        else platform.processor()
    )
    return f"{cpu} {torch.backends.cpu.get_cpu_capability()}"


def digest(run: Path) -> list[dict]:
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
    return episodes


def study_digest(study: Path) -> dict[str, list[dict]]:
    """digest() of every run of a quick study's directory, by grid point."""
    runs = sorted(p for p in (study / "runs").glob("*/*/*/seed*") if p.is_dir())
    return {str(run.relative_to(study / "runs")): digest(run) for run in runs}


def test_a_quick_study_repeats_the_recorded_episodes(tmp_path):
    from borl.cli import main

    machines = json.loads(RECORDED.read_text())["machines"]
    if kernels() not in machines:
        pytest.skip(f"no episodes recorded on this kind of CPU ({kernels()}): scripts/record_episodes.sh")
    recorded = machines[kernels()]["runs"]
    out = tmp_path / "study"
    assert main([*STUDY, "--out", str(out)]) == 0
    got = study_digest(out)
    assert sorted(got) == sorted(recorded)
    for point, expected in recorded.items():
        assert [e["file"] for e in got[point]] == [e["file"] for e in expected], point
        for mine, theirs in zip(got[point], expected, strict=True):
            where = f"{point} {theirs['file']}"
            assert (mine["seed"], mine["steps"], mine["success"]) == (
                theirs["seed"],
                theirs["steps"],
                theirs["success"],
            ), where
            # The same kind of CPU repeats the arithmetic: equal but for the printing of floats.
            assert mine["first_action"] == pytest.approx(theirs["first_action"], abs=1e-6), where
            assert mine["action_sum"] == pytest.approx(theirs["action_sum"], abs=1e-6), where


if __name__ == "__main__":
    # `python tests/test_recorded.py STUDY NOTE`: add STUDY's episodes as this machine's record.
    study, note = Path(sys.argv[1]), sys.argv[2]
    data = json.loads(RECORDED.read_text()) if RECORDED.exists() else {"machines": {}}
    data["machines"][kernels()] = {"recorded": note, "runs": study_digest(study)}
    RECORDED.write_text(json.dumps(data, indent=1) + "\n")
    print(f"recorded {kernels()} in {RECORDED}")
