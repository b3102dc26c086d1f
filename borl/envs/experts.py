"""Scripted waypoint experts that act from the simulator's privileged state.

Each expert moves the gripper toward per-phase targets with P-control on OSC_POSE delta actions,
keeping the gripper pointing down with its yaw matched to the object's, and adds Gaussian noise of a
given std to the six arm dimensions (the noise makes demonstrations cover more states).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from borl.envs.robosuite_env import RobosuiteEnv
from borl.errors import BorlError

# OSC_POSE delta scaling: an action of 1 asks for 0.05 m of translation and 0.5 rad of rotation.
_POS_SCALE = 0.05
_ROT_SCALE = 0.5
_OPEN, _CLOSE = -1.0, 1.0


def _rotvec(rot: np.ndarray) -> np.ndarray:
    """Axis-angle vector of a rotation matrix (angles below pi, which is all the experts need)."""
    cos = np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    return axis * angle / (2.0 * np.sin(angle))


def _top_down(yaw: float) -> np.ndarray:
    """Gripper frame pointing straight down (z = -world z) with its x axis at the given yaw."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


def _quat_yaw(quat_xyzw: np.ndarray) -> float:
    """Yaw of a body's x axis (robosuite quaternions are xyzw)."""
    x, y, z, w = quat_xyzw
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


class WaypointExpert:
    """Shared machinery: noise, P-control toward a pose, and per-episode phase bookkeeping.

    The env must be a RobosuiteEnv: the expert reads its robosuite observations and simulator, and
    notices a new episode from env.episode_steps == 0. Subclasses implement _plan(), returning
    (target position, target yaw or None, gripper command).
    """

    pos_gain = 4.0  # action per (position error / 0.05 m)
    rot_gain = 2.0  # action per (rotation error / 0.5 rad)

    def __init__(self, env: RobosuiteEnv, rng: np.random.Generator, noise: float) -> None:
        if not isinstance(env, RobosuiteEnv):
            raise BorlError(f"{type(self).__name__} needs a robosuite environment, got {type(env).__name__}")
        if noise < 0:
            raise BorlError(f"expert noise must be >= 0, got {noise}")
        self.env = env
        self.rng = rng
        self.noise = float(noise)
        self._phase = 0
        self._phase_steps = 0
        self._episode_state: dict[str, Any] = {}

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The next 7-dim action for the env's current state (obs is unused: state is privileged)."""
        if self.env.episode_steps == 0:
            self._phase, self._phase_steps, self._episode_state = 0, 0, {}
        self._phase_steps += 1  # the first call in a phase sees 1
        target_pos, target_yaw, gripper = self._plan(self.env.observation_dict())
        arm = np.concatenate([self._pos_action(target_pos), self._rot_action(target_yaw)])
        if self.noise > 0:
            arm = arm + self.rng.normal(0.0, self.noise, size=6)
        return np.concatenate([np.clip(arm, -1.0, 1.0), [gripper]]).astype(np.float32)

    def _plan(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None, float]:
        raise NotImplementedError

    def _advance(self) -> None:
        self._phase += 1
        self._phase_steps = 0

    def _eef_pos(self) -> np.ndarray:
        return np.asarray(self.env.observation_dict()["robot0_eef_pos"])

    def _eef_rot(self) -> np.ndarray:
        robot = self.env.raw.robots[0]
        return self.env.raw.sim.data.site_xmat[robot.eef_site_id["right"]].reshape(3, 3)

    def _pos_action(self, target: np.ndarray) -> np.ndarray:
        return np.clip(self.pos_gain * (target - self._eef_pos()) / _POS_SCALE, -1.0, 1.0)

    def _rot_action(self, target_yaw: float | None) -> np.ndarray:
        """Turn toward a top-down pose; the yaw is matched modulo 90 degrees (square objects)."""
        rot = self._eef_rot()
        current_yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
        yaw = current_yaw if target_yaw is None else target_yaw
        yaw = current_yaw + (yaw - current_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
        error = _rotvec(_top_down(yaw) @ rot.T)
        return np.clip(self.rot_gain * error / _ROT_SCALE, -1.0, 1.0)

    def _pos_error(self, target: np.ndarray) -> np.ndarray:
        return target - self._eef_pos()


class LiftExpert(WaypointExpert):
    """Lift: hover above the cube, descend, close the gripper, lift; regrasp if the grasp missed."""

    hover = 0.06  # m above the cube's centre
    grasp_depth = 0.005  # m below the cube's centre
    close_steps = 6
    lift_height = 0.12  # m above the grasp
    empty_gap = 0.01  # finger gap (m) below which the gripper holds nothing (the cube is 0.04 wide)

    def _plan(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None, float]:
        cube = np.asarray(obs["cube_pos"])
        cube_yaw = _quat_yaw(np.asarray(obs["cube_quat"]))
        grasp = cube - [0.0, 0.0, self.grasp_depth]
        if self._phase == 0:  # above the cube, gripper open and turned to the cube's yaw
            target = grasp + [0.0, 0.0, self.hover]
            err = self._pos_error(target)
            if np.linalg.norm(err[:2]) < 0.01 and abs(err[2]) < 0.02:
                self._advance()
            return target, cube_yaw, _OPEN
        if self._phase == 1:  # straight down, pausing the descent while off to the side
            xy_off = np.linalg.norm(self._pos_error(grasp)[:2])
            target = grasp if xy_off < 0.01 else np.append(grasp[:2], self._eef_pos()[2])
            if xy_off < 0.01 and abs(self._pos_error(grasp)[2]) < 0.01:
                self._episode_state["grasp"] = self._eef_pos().copy()
                self._advance()
            return target, cube_yaw, _OPEN
        if self._phase == 2:  # close while holding still
            if self._phase_steps >= self.close_steps:
                self._advance()
            return self._episode_state["grasp"], None, _CLOSE
        finger_gap = float(obs["robot0_gripper_qpos"][0] - obs["robot0_gripper_qpos"][1])
        if finger_gap < self.empty_gap:  # closed on nothing: open and start over
            self._phase, self._phase_steps = 0, 0
            return grasp + [0.0, 0.0, self.hover], cube_yaw, _OPEN
        return self._episode_state["grasp"] + [0.0, 0.0, self.lift_height], None, _CLOSE
