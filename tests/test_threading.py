"""The threading task (MimicGen Threading_D0 rebuilt on robosuite 1.5): scene, placements, observation
layout, success check, and a quick run. Shapes, seeding and the expert on three seeds are covered with the
other robosuite tasks in test_tasks_robosuite.py."""

from __future__ import annotations

import numpy as np
import pytest

from borl.cli import main
from borl.envs import get_task

TASK = get_task("threading")


def _yaw(quat_xyzw: np.ndarray) -> float:
    x, y, z, w = quat_xyzw
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def _place_needle(env, bar_centre: np.ndarray) -> None:
    """Put the needle, pointing along -y (the ring's axis), with its bar's centre at bar_centre."""
    raw = env.raw
    body = bar_centre + [0.0, 0.02, 0.0]  # the bar's centre is 0.02 toward the tip from the body's origin
    raw.sim.data.set_joint_qpos(raw.needle.joints[0], np.concatenate([body, [1.0, 0.0, 0.0, 0.0]]))
    raw.sim.forward()


def test_spec() -> None:
    spec = TASK.spec
    assert spec.env_name == "Threading_D0" and (spec.obs_dim, spec.act_dim, spec.horizon) == (37, 7, 400)
    assert spec.obs_keys[-1] == ("object", 28) and spec.demo_noise == 0.15


def test_scene_and_placements(env) -> None:
    raw = env.raw
    assert len(raw.ring_geom_ids) == 20
    assert np.allclose(raw.table_full_size[:2], (0.8, 0.8))
    for seed in range(5):
        obs = env.reset(seed)
        o = env.observation_dict()
        x, y, _ = o["needle_obj_pos"] - raw.table_offset
        assert -0.2 <= x <= -0.05 and 0.15 <= y <= 0.25
        assert -2 * np.pi / 3 <= _yaw(o["needle_obj_quat"]) <= -np.pi / 3
        np.testing.assert_allclose(o["tripod_obj_pos"][:2], (0.0, -0.15), atol=1e-3)
        assert _yaw(o["tripod_obj_quat"]) == pytest.approx(np.pi / 2, abs=1e-3)
        np.testing.assert_allclose(raw.ring_axis(), (0.0, 1.0, 0.0), atol=1e-3)  # the ring faces the needle
        # object-state: needle pos, quat, pose in the gripper's frame (pos, quat); the same for the tripod
        names = ("pos", "quat", "to_robot0_eef_pos", "to_robot0_eef_quat")
        expected = [o[f"{obj}_{name}"] for obj in ("needle_obj", "tripod_obj") for name in names]
        np.testing.assert_allclose(obs[9:], np.concatenate(expected).astype(np.float32))
        np.testing.assert_allclose(np.linalg.norm(o["needle_obj_to_robot0_eef_quat"]), 1.0, atol=1e-5)


def test_success_needs_the_bar_through_the_ring(env) -> None:
    env.reset(0)
    ring = env.raw.ring_centre()
    _place_needle(env, ring)
    assert env.is_success() and env.raw.reward() == 1.0
    np.testing.assert_allclose(env.raw.needle_point("bar"), ring, atol=1e-9)
    _place_needle(env, ring + [0.0, 0.06, 0.0])  # only the tip at the ring's centre
    np.testing.assert_allclose(env.raw.needle_point("tip"), ring, atol=1e-9)
    assert not env.is_success()
    _place_needle(env, ring + [0.03, 0.0, 0.0])  # beside the ring
    assert not env.is_success() and env.raw.reward() == 0.0


def test_quick_run(tmp_path, one_thread) -> None:
    out = tmp_path / "run"
    args = ["run", "threading", "--quick", "--quiet", "--workers", "1", "--rollouts", "2"]
    args += ["--eval-episodes", "2"]
    assert main([*args, "--out", str(out)]) == 0
    lines = (out / "metrics.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("iteration,")
