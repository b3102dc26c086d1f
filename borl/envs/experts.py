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


def _wrap(angle: float, period: float) -> float:
    """angle modulo period, in [-period / 2, period / 2)."""
    return (angle + period / 2) % period - period / 2


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
    yaw_period = np.pi / 2  # target yaws are matched modulo this (a cube looks the same every 90 degrees)

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

    def _eef_yaw(self) -> float:
        rot = self._eef_rot()
        return float(np.arctan2(rot[1, 0], rot[0, 0]))

    def _rot_action(self, target_yaw: float | None) -> np.ndarray:
        """Turn toward a top-down pose; the yaw is matched modulo yaw_period (the shortest turn)."""
        rot = self._eef_rot()
        current_yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
        yaw = current_yaw if target_yaw is None else target_yaw
        yaw = current_yaw + _wrap(yaw - current_yaw, self.yaw_period)
        error = _rotvec(_top_down(yaw) @ rot.T)
        return np.clip(self.rot_gain * error / _ROT_SCALE, -1.0, 1.0)

    def _pos_error(self, target: np.ndarray) -> np.ndarray:
        return target - self._eef_pos()


class PickExpert(WaypointExpert):
    """Grasp from above: hover over the grasp point, descend, close; subclasses say what follows.

    Once closed, if the fingers meet (nothing held: a missed grasp or a drop before release) the expert
    opens and starts over. Subclasses implement _grasp_pose() and _after_grasp().
    """

    hover = 0.06  # m above the grasp point
    grasp_yaw_tol: float | None = None  # rad: if set, descend only once the gripper's yaw is this close
    close_steps = 6
    empty_gap = 0.01  # finger gap (m) below which the gripper holds nothing

    # The first phase that is not holding the object: the fingers are not checked from there on.
    release_phase: int | None = None

    def _grasp_pose(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None]:
        """Where the gripper's site closes on the object, and the gripper's yaw there."""
        raise NotImplementedError

    def _after_grasp(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None, float]:
        """The plan from phase 3 on (the object held since the end of phase 2)."""
        raise NotImplementedError

    def _plan(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None, float]:
        grasp, yaw = self._grasp_pose(obs)
        if self._phase == 0:  # above the grasp point, gripper open and turned to the object's yaw
            target = grasp + [0.0, 0.0, self.hover]
            err = self._pos_error(target)
            if np.linalg.norm(err[:2]) < 0.01 and abs(err[2]) < 0.02 and self._yaw_reached(yaw):
                self._advance()
            return target, yaw, _OPEN
        if self._phase == 1:  # straight down, pausing the descent while off to the side
            xy_off = np.linalg.norm(self._pos_error(grasp)[:2])
            target = grasp if xy_off < 0.01 else np.append(grasp[:2], self._eef_pos()[2])
            if xy_off < 0.01 and abs(self._pos_error(grasp)[2]) < 0.01:
                self._episode_state["grasp"] = self._eef_pos().copy()
                self._advance()
            return target, yaw, _OPEN
        if self._phase == 2:  # close while holding still
            if self._phase_steps >= self.close_steps:
                self._advance()
            return self._episode_state["grasp"], None, _CLOSE
        holding = self.release_phase is None or self._phase < self.release_phase
        if holding and self._finger_gap(obs) < self.empty_gap:  # closed on nothing: open and start over
            self._phase, self._phase_steps = 0, 0
            return grasp + [0.0, 0.0, self.hover], yaw, _OPEN
        return self._after_grasp(obs)

    def _yaw_reached(self, yaw: float | None) -> bool:
        if self.grasp_yaw_tol is None or yaw is None:
            return True
        return abs(_wrap(yaw - self._eef_yaw(), self.yaw_period)) < self.grasp_yaw_tol

    def _finger_gap(self, obs: dict[str, np.ndarray]) -> float:
        return float(obs["robot0_gripper_qpos"][0] - obs["robot0_gripper_qpos"][1])


class LiftExpert(PickExpert):
    """Lift: hover above the cube, descend, close the gripper, lift; regrasp if the grasp missed."""

    grasp_depth = 0.005  # m below the cube's centre
    lift_height = 0.12  # m above the grasp
    empty_gap = 0.01  # the cube is 0.04 wide

    def _grasp_pose(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None]:
        cube = np.asarray(obs["cube_pos"])
        return cube - [0.0, 0.0, self.grasp_depth], _quat_yaw(np.asarray(obs["cube_quat"]))

    def _after_grasp(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None, float]:
        return self._episode_state["grasp"] + [0.0, 0.0, self.lift_height], None, _CLOSE


class PickPlaceExpert(PickExpert):
    """Pick an object, carry it over a goal, lower it there, release and back off; if the task has not
    succeeded by then (the episode would have ended), start over from the grasp.

    Subclasses implement _grasp_pose() and _goal(), which says where a reference point of the object is,
    where it should be when released, and the gripper's yaw while carrying it there.
    """

    release_phase = 6
    carry_above = 0.1  # m: the reference point is carried this far above its goal
    goal_xy_tol = 0.01  # m: lower once the reference point is this close to the goal horizontally
    goal_yaw_tol = 0.1  # rad: ... and the gripper this close to the goal yaw
    lower_steps = 40  # give up lowering (release where it is) after this many steps
    release_steps = 6
    retreat = 0.1  # m straight up after releasing

    def _goal(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float | None]:
        """(the held object's reference point now, its goal when released, the gripper's yaw to carry it)."""
        raise NotImplementedError

    def _after_grasp(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None, float]:
        held, goal, yaw = self._goal(obs)
        eef = self._eef_pos()
        carry = goal + [0.0, 0.0, self.carry_above]
        if self._phase == 3:  # straight up to the carrying height
            if held[2] > carry[2] - 0.02:
                self._advance()
            return np.append(self._episode_state["grasp"][:2], eef[2] + carry[2] - held[2]), None, _CLOSE
        if self._phase == 4:  # over the goal, turning to the goal yaw
            yaw_err = 0.0 if yaw is None else _wrap(yaw - self._eef_yaw(), self.yaw_period)
            if np.linalg.norm(goal[:2] - held[:2]) < self.goal_xy_tol and abs(yaw_err) < self.goal_yaw_tol:
                self._advance()
            return eef + carry - held, yaw, _CLOSE
        if self._phase == 5:  # down onto the goal, pausing the descent while off to the side
            aligned = np.linalg.norm(goal[:2] - held[:2]) < self.goal_xy_tol
            target = eef + goal - held
            if not aligned:
                target[2] = eef[2]
            if (aligned and held[2] < goal[2] + 0.01) or self._phase_steps >= self.lower_steps:
                self._episode_state["release"] = eef.copy()
                self._advance()
            return target, yaw, _CLOSE
        if self._phase == 6:  # open while holding still
            if self._phase_steps >= self.release_steps:
                self._advance()
            return self._episode_state["release"], None, _OPEN
        target = self._episode_state["release"] + [0.0, 0.0, self.retreat]
        if abs(self._pos_error(target)[2]) < 0.02:  # backed off and no success: try again
            self._phase, self._phase_steps = 0, 0
        return target, None, _OPEN


class CanExpert(PickPlaceExpert):
    """PickPlaceCan: grasp the can around its middle, carry it over its bin quadrant, drop it in.

    The can goes near the quadrant's corner closest to the robot (the quadrant's centre is at the edge
    of the arm's reach, where it cannot hold the carrying height).
    """

    corner_inset = 0.06  # m from the quadrant's inner corner, along x and y (the can's radius is 0.025)
    rest_height = 0.06  # m: the can's centre above the bin's origin when it stands in the bin
    drop_height = 0.03  # m: the can's centre above its resting height when released
    carry_above = 0.1  # the can's bottom then clears the bins' walls by 5 cm
    goal_xy_tol = 0.02  # the quadrant is 0.19 x 0.24 m

    def _grasp_pose(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None]:
        return np.asarray(obs["Can_pos"]), None  # a cylinder: any yaw grasps it

    def _goal(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float | None]:
        raw = self.env.raw
        # robosuite's target is the quadrant's centre, a quarter of the bin's size from its inner corner
        corner = raw.target_bin_placements[raw.object_id][:2] - raw.bin_size[:2] / 4
        height = raw.bin2_pos[2] + self.rest_height + self.drop_height
        goal = np.append(corner + self.corner_inset, height)
        return np.asarray(obs["Can_pos"]), goal, None


class SquareExpert(PickPlaceExpert):
    """NutAssemblySquare: grasp the nut's handle across its width, carry the nut's hole over the square
    peg with the nut turned square to it, and lower it down the peg before letting go (a nut dropped
    from the peg's top tilts toward its handle and jams).

    The nut arrives with its handle pointing to the side or back toward the robot (a handle beyond the
    peg is at the edge of the arm's reach), and turns are chosen to keep the wrist joint in its range.
    """

    yaw_period = 2 * np.pi  # yaw targets are exact: the expert picks among equivalent ones itself
    grasp_yaw_tol = 0.1  # fingers still turning on the way down push the nut away
    close_steps = 12  # the fingers take this long to close on the 3 cm handle
    goal_xy_tol = 0.004  # the hole leaves about 7 mm around the peg
    carry_above = 0.15  # the nut's bottom clears the peg's top (0.12 above the goal) by 3 cm
    grasp_height = -0.003  # m: the gripper's site below the handle's centre (its pads sit above the site)
    release_above = 0.03  # m: the nut's centre above the table when released (success counts below 0.05)
    wrist_limit = 2.6  # rad: turns that would take the last joint beyond this are avoided (its range is 2.9)

    def _grasp_pose(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None]:
        raw = self.env.raw
        handle = raw.sim.data.site_xpos[raw.sim.model.site_name2id(raw.nuts[0].important_sites["handle"])]
        # the fingers close along the gripper's x axis: turn it across the handle (the nut's y axis),
        # from whichever side is the shorter turn
        across = _quat_yaw(np.asarray(obs["SquareNut_quat"])) + np.pi / 2
        yaw = self._eef_yaw() + _wrap(across - self._eef_yaw(), np.pi)
        return np.asarray(handle) + [0.0, 0.0, self.grasp_height], yaw

    def _goal(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float | None]:
        raw = self.env.raw
        peg = np.asarray(raw.sim.data.body_xpos[raw.peg1_body_id])
        goal = np.array([peg[0], peg[1], raw.table_offset[2] + self.release_above])
        nut_yaw = _quat_yaw(np.asarray(obs["SquareNut_quat"]))
        if self._phase == 3:  # choose, while lifting, the square orientation to carry the nut in
            self._episode_state["nut_yaw"] = self._square_yaw(nut_yaw, float(obs["robot0_joint_pos"][6]))
        turn = _wrap(self._episode_state["nut_yaw"] - nut_yaw, 2 * np.pi)
        return np.asarray(obs["SquareNut_pos"]), goal, self._eef_yaw() + turn

    def _square_yaw(self, nut_yaw: float, wrist: float) -> float:
        """The nut yaw (a multiple of 90 degrees) reached by the shortest turn that keeps the handle off
        the far side and the wrist joint in range (turning the gripper by +a turns that joint by about -a)."""
        turns = [_wrap(-nut_yaw, np.pi / 2) + k * np.pi / 2 for k in range(-2, 3)]
        safe = [t for t in turns if abs(wrist - t) < self.wrist_limit] or turns
        near = [t for t in safe if np.cos(nut_yaw + t) < 0.5] or safe
        return nut_yaw + min(near, key=abs)


class StackExpert(PickPlaceExpert):
    """Stack: grasp cube A like Lift's cube, carry it over cube B, set it down on top, release."""

    grasp_depth = 0.005  # m below cube A's centre
    carry_above = 0.05
    drop_height = 0.005  # m between the cubes when released

    def _grasp_pose(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None]:
        cube = np.asarray(obs["cubeA_pos"])
        return cube - [0.0, 0.0, self.grasp_depth], _quat_yaw(np.asarray(obs["cubeA_quat"]))

    def _goal(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float | None]:
        raw = self.env.raw
        half_a, half_b = raw.cubeA.size[2], raw.cubeB.size[2]
        goal = np.asarray(obs["cubeB_pos"]) + [0.0, 0.0, half_b + half_a + self.drop_height]
        return np.asarray(obs["cubeA_pos"]), goal, None
