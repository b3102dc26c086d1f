"""Videos rendered offscreen from stored simulator states: files that decode to the episode's frames,
the outcome marked, `borl run --video` and `borl eval --video`, and a clear error without a renderer."""

import subprocess
import sys

import numpy as np
import pytest

from borl.cli import main
from borl.data.store import EpisodeStore
from borl.eval.video import (
    BORDER,
    FAILURE_RGB,
    HOLD_FRAMES,
    SUCCESS_RGB,
    mark_outcome,
    read_video,
    write_video,
)

SMALL = ["--quick", "--quiet", "--workers", "1", "--eval-episodes", "2", "--rollouts", "2"]


@pytest.mark.parametrize("success", [True, False])
def test_a_video_decodes_to_its_frames_with_the_outcome_marked(tmp_path, success):
    rng = np.random.default_rng(0)
    frames = np.full((7, 64, 64, 3), 128, dtype=np.uint8)
    frames[:, 20:40, 20:40] = rng.integers(0, 255, size=(7, 20, 20, 3), dtype=np.uint8)
    path = tmp_path / "episode.mp4"
    write_video(path, mark_outcome(frames, success))
    decoded = read_video(path)
    assert decoded.shape == (7 + HOLD_FRAMES, 64, 64, 3) and decoded.dtype == np.uint8
    colour = np.array(SUCCESS_RGB if success else FAILURE_RGB)
    border = decoded[:, : BORDER - 1, 10:54].reshape(-1, 3).mean(axis=0)
    assert np.abs(border - colour).max() < 25, border  # H.264 and yuv420p shift colours a little
    assert np.abs(decoded[:, 50, 50].astype(int) - 128).max() < 12
    assert [p.name for p in tmp_path.iterdir()] == ["episode.mp4"]


def test_run_and_eval_draw_videos_of_their_episodes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "lift", *SMALL, "--algo", "il", "--video", "1", "--out", str(out)]) == 0
    evals = EpisodeStore(out / "eval")
    for iteration in (0, 1):
        (video,) = (out / "videos" / f"iter_{iteration:03d}").iterdir()
        episode = evals.load(iteration, "eval")[0]
        assert video.name == f"eval_00000_{'success' if episode.success else 'failure'}.mp4"
        assert len(read_video(video)) == len(episode) + HOLD_FRAMES
    assert main(["eval", str(out), "--episodes", "2", "--video", "2"]) == 0
    directory = out / "videos" / "eval_iter_001_seed12345" / "policy_alone"
    assert len(sorted(directory.glob("eval_0000[01]_*.mp4"))) == 2
    assert "2 videos (policy_alone)" in capsys.readouterr().out


def test_without_a_renderer_the_error_is_one_line(tmp_path):
    code = (
        "import borl, mujoco\n"
        "from borl.envs.rendering import FrameRenderer\n"
        "m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\".1\"/></worldbody></mujoco>')\n"
        "FrameRenderer().render(m, mujoco.MjData(m), -1, 32)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "MUJOCO_GL": "disable"},
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "BorlError: cannot render offscreen with MUJOCO_GL=disable" in result.stderr
    assert "apt-get install libosmesa6" in result.stderr.splitlines()[-1]


def test_borl_video_draws_a_finished_runs_stored_episodes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "lift", *SMALL, "--algo", "il", "--iterations", "0", "--out", str(out)]) == 0
    assert main(["video", str(out), "--count", "1", "--quiet"]) == 0
    (path,) = (out / "videos" / "iter_000").glob("eval_00000_*.mp4")
    assert f"wrote {path}" in capsys.readouterr().out
    assert len(read_video(path)) == len(EpisodeStore(out / "eval").load(0, "eval")[0]) + HOLD_FRAMES
    assert main(["video", str(out), "--iteration", "3"]) == 2
    assert "has not finished iteration 3 (finished: [0])" in capsys.readouterr().err
