"""The command line on real robosuite Lift: quick runs, resume after SIGKILL, bad input."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from borl.cli import main
from borl.data.store import EpisodeStore

QUICK = ["--quick", "--quiet"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "borl", *args], capture_output=True, text=True, timeout=300, check=False
    )


def read_metrics(directory: Path) -> list[dict]:
    with open(directory / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "lift.hdf5"
    assert main(["demos", "lift", "--episodes", "3", "--out", str(path)]) == 0
    return path


def test_quick_run_writes_the_run_directory(tmp_path, demo_file):
    out = tmp_path / "run"
    assert main(["run", "lift", *QUICK, "--dataset", str(demo_file), "--out", str(out)]) == 0
    rows = read_metrics(out)
    assert [r["iteration"] for r in rows] == ["0", "1"]
    assert int(rows[1]["rollouts"]) == 4 and int(rows[1]["env_steps"]) > 0
    assert all(0.0 <= float(r["eval_success_rate"]) <= 1.0 for r in rows)
    assert (out / "config.yaml").exists() and (out / "plots" / "success.png").stat().st_size > 0
    assert (out / "checkpoints" / "iter_000").is_dir() and (out / "checkpoints" / "iter_001").is_dir()
    store = EpisodeStore(out / "data")
    assert store.indices(0, "demo") == {0, 1, 2}
    rollouts = store.load(1, "rollout")
    assert {e.lineage.index for e in rollouts} == {0, 1, 2, 3}
    assert all(e.lineage.checkpoint == "iter_000" for e in rollouts)
    with open(out / "curves" / "iter_001.csv") as f:
        curves = list(csv.DictReader(f))
    assert {(r["phase"], r["step"]) for r in curves} == {
        (p, s) for p in ("critic", "policy") for s in ("0", "59")
    }
    assert {"q_loss", "v_loss", "q_mean", "policy_loss"} <= set(curves[0])
    assert (out / "plots" / "training.png").stat().st_size > 0

    # A kill after the last metrics file but before the csv: resume, with nothing left to run, redoes it.
    (out / "metrics.csv").write_text("iteration\n0\n")
    (out / "plots" / "success.png").unlink()
    assert main(["resume", str(out), "--quiet"]) == 0
    assert read_metrics(out) == rows and (out / "plots" / "success.png").exists()


def test_eval_a_checkpoint_with_other_extraction(tmp_path, demo_file, capsys):
    out = tmp_path / "run"
    args = ["run", "lift", *QUICK, "--dataset", str(demo_file), "--iterations", "0", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "2", "--set", "extraction.candidates=2"]) == 0
    assert "iteration 0 (best of 2): success" in capsys.readouterr().out
    assert main(["eval", str(out), "--episodes", "2", "--no-extraction"]) == 0
    assert "(policy alone)" in capsys.readouterr().out
    assert main(["eval", str(out), "--set", "policy.width=8"]) != 0
    assert "only extraction" in _error_line(capsys)


def test_eval_acts_on_the_runs_torch_threads(tmp_path, demo_file, capsys):
    out = tmp_path / "run"
    args = ["run", "lift", *QUICK, "--dataset", str(demo_file), "--iterations", "0", "--out", str(out)]
    assert main([*args, "--set", "train.threads=1"]) == 0
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["eval", str(out), "--episodes", "1", "--json"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def _wait_for(predicate, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, process.stderr.read() if process.stderr else "run ended early"
        assert time.monotonic() < deadline, "timed out waiting for the run to get there"
        time.sleep(0.05)


def _kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("phase", ["collection", "training"])
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, demo_file, phase):
    common = [*QUICK, "--dataset", str(demo_file), "--iterations", "2", "--rollouts", "6"]
    if phase == "training":
        common += ["--set", "train.policy_steps=3000"]
    reference = tmp_path / "reference"
    assert main(["run", "lift", *common, "--out", str(reference)]) == 0

    out = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "borl", "run", "lift", *common, "--out", str(out)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = EpisodeStore(out / "data")
    if phase == "collection":
        _wait_for(lambda: 0 < len(store.indices(1, "rollout")) < 6, process)
    else:
        _wait_for(
            lambda: len(store.indices(1, "rollout")) == 6 and not (out / "checkpoints" / "iter_001").exists(),
            process,
        )
        time.sleep(1.0)
    _kill_group(process)
    assert not (out / "metrics" / "iter_002.json").exists()

    assert main(["resume", str(out), "--quiet"]) == 0
    resumed, expected = read_metrics(out), read_metrics(reference)
    assert [r["iteration"] for r in resumed] == [r["iteration"] for r in expected]
    for iteration in (1, 2):
        episodes = EpisodeStore(out / "data").load(iteration, "rollout")
        assert sorted(e.lineage.index for e in episodes) == list(range(6))
        twins = EpisodeStore(reference / "data").load(iteration, "rollout")
        for mine, theirs in zip(episodes, twins, strict=True):
            assert mine.lineage == theirs.lineage
            np.testing.assert_allclose(mine.actions, theirs.actions, atol=1e-5)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def _write_bad_dataset(path: Path, source: Path, edit) -> Path:
    path.write_bytes(source.read_bytes())
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _nan_actions(f: h5py.File) -> None:
    actions = f["data/demo_0/actions"][()]
    actions[3, 0] = np.nan
    f["data/demo_0/actions"][...] = actions


def _wrong_action_dim(f: h5py.File) -> None:
    actions = f["data/demo_0/actions"][()]
    del f["data/demo_0/actions"]
    f["data/demo_0/actions"] = actions[:, :5]


def _wrong_obs_dim(f: h5py.File) -> None:
    obs = f["data/demo_0/obs/object"][()]
    del f["data/demo_0/obs/object"]
    f["data/demo_0/obs/object"] = obs[:, :4]


@pytest.mark.parametrize(
    ("edit", "message"),
    [(_nan_actions, "nan"), (_wrong_action_dim, "action"), (_wrong_obs_dim, "object")],
)
def test_bad_dataset_is_refused_before_writing(tmp_path, demo_file, capsys, edit, message):
    bad = _write_bad_dataset(tmp_path / "bad.hdf5", demo_file, edit)
    out = tmp_path / "run"
    assert main(["run", "lift", *QUICK, "--dataset", str(bad), "--out", str(out)]) != 0
    assert message in _error_line(capsys).lower()
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "lift", "--dataset", "/no/such/file.hdf5"], "file.hdf5"),
        (["run", "cube-juggling"], "unknown task 'cube-juggling'"),
        (["run", "lift", "--algo", "magic"], "unknown preset 'magic'"),
        (["resume", "/no/such/run"], "not a run directory"),
    ],
)
def test_bad_arguments_give_one_line(tmp_path, capsys, args, message):
    assert main([*args, "--quiet"] if args[0] != "resume" else args) != 0
    assert message in _error_line(capsys)


def test_unreadable_dataset(tmp_path, capsys):
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_text("not an hdf5 file")
    assert main(["run", "lift", *QUICK, "--dataset", str(garbage), "--out", str(tmp_path / "r")]) != 0
    assert "garbage.hdf5" in _error_line(capsys)


@pytest.mark.parametrize("flag", ["--rollouts", "--iterations", "--eval-episodes", "--video"])
def test_negative_counts_exit_nonzero_without_traceback(flag):
    result = run_cli("run", "lift", flag, "-3")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "must" in result.stderr
    assert result.stderr.count("\n") == 1  # one line, from the config's own limit


def test_existing_run_is_not_overwritten(tmp_path, demo_file, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("task: lift\n")
    assert main(["run", "lift", *QUICK, "--dataset", str(demo_file), "--out", str(out)]) != 0
    assert "already holds a run" in _error_line(capsys)
    assert (out / "config.yaml").read_text() == "task: lift\n"


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_workers_exit_when_the_run_is_killed(tmp_path, demo_file):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "borl", "run", "lift", *QUICK, "--dataset", str(demo_file), "--out", str(out)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: (out / "checkpoints" / "iter_000").exists(), process)
    workers = _children(process.pid)
    assert workers, "the run should have worker processes"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 90
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in workers if _running(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "collection workers outlived the killed run"


def test_retrain_an_iteration_on_the_same_data(tmp_path, demo_file, capsys):
    source = tmp_path / "run"
    assert main(["run", "lift", *QUICK, "--dataset", str(demo_file), "--out", str(source)]) == 0
    out = tmp_path / "filtered"
    args = ["retrain", str(source), "--iteration", "1", "--algo", "filtered-il", "--quiet", "--out", str(out)]
    assert main([*args, "--set", "train.policy_steps=30"]) == 0
    assert "algo: filtered-il" in (out / "config.yaml").read_text()
    before, after = read_metrics(source), read_metrics(out)
    assert after[0] == before[0] and [r["iteration"] for r in after] == ["0", "1"]
    assert after[1]["rollouts"] == before[1]["rollouts"] and after[1]["env_steps"] == before[1]["env_steps"]
    for directory in ("data/iter_000", "data/iter_001", "checkpoints/iter_000", "eval/iter_000"):
        names = sorted(p.name for p in (source / directory).iterdir())
        assert names == sorted(p.name for p in (out / directory).iterdir())
        for name in names:
            assert (source / directory / name).read_bytes() == (out / directory / name).read_bytes()
    old, new = ((d / "checkpoints/iter_001/weights.pt").read_bytes() for d in (source, out))
    assert old != new

    capsys.readouterr()
    assert main(["retrain", str(source), "--iteration", "1", "--out", str(out)]) != 0
    assert "not empty" in _error_line(capsys)
    assert main(["retrain", str(source), "--iteration", "2", "--out", str(tmp_path / "x")]) != 0
    assert "has not completed iteration 2" in _error_line(capsys)
    assert (
        main(
            ["retrain", str(source), "--iteration", "1", "--set", "rollouts=9", "--out", str(tmp_path / "y")]
        )
        != 0
    )
    assert "rollouts defines the data" in _error_line(capsys)
    assert not (tmp_path / "y").exists()
    assert (
        main(["retrain", str(source), "--iteration", "1", "--algo", "nope", "--out", str(tmp_path / "z")])
        != 0
    )
    assert "unknown preset 'nope'" in _error_line(capsys)


def test_an_existing_runs_folder_in_the_working_directory_changes_nothing(capsys):
    """The main job leaves runs/lift-recipe-seed0 behind; a CLI test with the default --out must still
    get its own error, not "already holds a run" (the README's two commands in a row)."""
    left_behind = Path("runs") / "lift-recipe-seed0"
    left_behind.mkdir(parents=True)
    (left_behind / "config.yaml").write_text("task: lift\n")
    assert main(["run", "lift", "--dataset", "/no/such/file.hdf5", "--quiet"]) != 0
    assert "file.hdf5" in _error_line(capsys)
    assert (left_behind / "config.yaml").read_text() == "task: lift\n"


@pytest.fixture
def tmpfs(tmp_path):
    """A mounted 64 KiB tmpfs (root only): mount(options) -> its path; unmounted after the test."""
    mounted = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size=64k,{options}", "tmpfs", str(point)],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def _full(point: Path) -> Path:
    with open(point / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return point / "run"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file", "it is a file"),
        ("cannot-create", "No such file or directory"),
        ("read-only", "Read-only file system"),
        ("no-space", "No space left on device"),
    ],
)
def test_output_path_failures_are_one_line(tmp_path, demo_file, capsys, tmpfs, where, message):
    if where == "file":
        out = tmp_path / "a-file"
        out.write_text("keep me\n")
    elif where == "cannot-create":
        out = Path("/proc/borl-cannot-write/run")
    elif where == "read-only":
        out = tmpfs("ro") / "run"
    else:
        out = _full(tmpfs("rw"))
    assert main(["run", "lift", *QUICK, "--dataset", str(demo_file), "--out", str(out)]) != 0
    assert message in _error_line(capsys)
    if where == "file":
        assert out.read_text() == "keep me\n"
    else:
        assert not (out / "config.yaml").exists()


def test_demos_check_their_output_before_making_any(capsys):
    assert main(["demos", "lift", "--episodes", "50", "--out", "/proc/borl-no/d.hdf5"]) != 0
    assert "No such file or directory" in _error_line(capsys)


def test_disk_full_midway_is_one_line_and_resumes(tmp_path, demo_file, capsys, tmpfs):
    """Space runs out after the run directory was checked (episodes are larger than the probe): one
    line, and once there is room `borl resume` finishes the run."""
    point = tmpfs("rw")
    with open(point / "filler", "wb") as f:
        f.write(b"\0" * 40 * 1024)
    out = point / "run"
    assert main(["run", "lift", *QUICK, "--dataset", str(demo_file), "--out", str(out)]) != 0
    assert "No space left on device" in _error_line(capsys)
    (point / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,size=64m", str(point)], check=True)
    assert main(["resume", str(out), "--quiet"]) == 0
    assert [r["iteration"] for r in read_metrics(out)] == ["0", "1"]


def test_corrupt_config_is_one_line_naming_file_and_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("task: lift\nalgo: [recipe\nseed: 1\n")
    assert main(["resume", str(run)]) != 0
    line = _error_line(capsys)
    assert str(run / "config.yaml") in line and "line 3" in line


def test_a_larger_dataset_says_how_many_episodes_it_used(tmp_path, demo_file, capsys):
    out = tmp_path / "run"
    args = ["run", "lift", *QUICK, "--iterations", "0", "--dataset", str(demo_file), "--out", str(out)]
    assert main([*args, "--demos", "2"]) == 0
    said = capsys.readouterr().out
    assert "using the first 2 of the 3 episodes" in said and "--demos 2" in said
    assert EpisodeStore(out / "data").indices(0, "demo") == {0, 1}


def test_eval_acts_as_the_run_deployed_its_agent(tmp_path, demo_file, capsys):
    import json

    out = tmp_path / "run"
    args = ["run", "lift", *QUICK, "--dataset", str(demo_file), "--iterations", "0", "--out", str(out)]
    assert main([*args, "--set", "extraction.from_iteration=1"]) == 0
    capsys.readouterr()
    # Iteration 0 was deployed with its policy alone: so is "deployed", and paired it differs by nothing.
    assert main(["eval", str(out), "--episodes", "2", "--paired", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert not result["extracts"] and "from_iteration" in result["extraction"]
    assert result["deployed"] == result["policy_alone"] and result["difference"]["mean"] == 0.0
    assert main(["eval", str(out), "--episodes", "2"]) == 0
    assert "as deployed, the policy alone: before extraction.from_iteration=1" in capsys.readouterr().out
    assert main(["eval", str(out), "--episodes", "2", "--json", "--set", "extraction.from_iteration=0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["extracts"] and result["extraction"].startswith("best of")


def test_paired_eval_reports_both_and_their_difference(tmp_path, demo_file, capsys):
    import json

    out = tmp_path / "run"
    args = ["run", "lift", *QUICK, "--dataset", str(demo_file), "--iterations", "0", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "3", "--paired", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["deployed"]["successes"]) == len(result["policy_alone"]["successes"]) == 3
    deployed, alone = (np.mean(result[m]["successes"]) for m in ("deployed", "policy_alone"))
    assert result["difference"]["mean"] == pytest.approx(deployed - alone)
    assert main(["eval", str(out), "--episodes", "2", "--paired"]) == 0
    assert "(paired s.e.)" in capsys.readouterr().out
    assert main(["eval", str(out), "--paired", "--no-extraction"]) != 0
    assert "--paired" in _error_line(capsys)
    rows = read_metrics(out)
    assert 0.0 <= float(rows[0]["moved_from_first"]) <= 1.0 and rows[0]["q_spread"] != ""
