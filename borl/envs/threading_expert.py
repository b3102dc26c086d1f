"""The scripted expert for threading (Threading_D0): grasp the needle's handle from above, lift it to the
ring's height, turn it to point along the ring's axis, line its tip up in front of the hole, push it
through.

It acts from privileged state: the needle's and the ring's poses from the simulator (see threading_env).
"""

from __future__ import annotations

import numpy as np

from borl.envs.experts import _CLOSE, PickExpert, _wrap


def _heading(vector: np.ndarray) -> float:
    """The yaw (rad) of a vector's horizontal part."""
    return float(np.arctan2(vector[1], vector[0]))


class ThreadingExpert(PickExpert):
    """Threading: grasp the needle's handle across the bar, carry the needle to the ring pointing along
    the ring's axis, hold its tip `standoff` in front of the hole until lined up, then push it through
    while keeping the part of the bar inside the ring centred; if it jams, back off and line up again.

    The grasp yaw (either side of the handle) is chosen so that the turn that follows keeps the wrist
    joint in its range.
    """

    yaw_period = 2 * np.pi  # yaw targets are exact: the expert picks among equivalent ones itself
    grasp_yaw_tol = 0.1  # fingers still turning on the way down push the light needle away
    grasp_depth = 0.005  # m: the gripper's site below the handle's centre
    close_steps = 8
    empty_gap = 0.02  # m: the handle is 0.04 wide; a smaller gap holds nothing (or only the bar)
    wrist_limit = 2.6  # rad: the last joint's range is 2.9
    lift = 0.05  # m: lift the handle this far above the table before turning
    standoff = 0.03  # m: the tip's distance in front of the ring's centre while lining up
    align_tol = 0.003  # m: start pushing once the tip is this close to its place in front of the hole
    align_yaw_tol = 0.03  # rad
    align_steps = 40  # push anyway after lining up for this many steps
    insert_depth = 0.06  # m: the tip this far beyond the ring's centre puts the bar's centre in it
    push_tol = 0.005  # m: push on only while the bar is this close to the ring's axis (the ring gives)
    push_step = 0.006  # m: the furthest ahead of the needle the push target runs
    insert_steps = 60  # back off and line up again after pushing this long
    ring_half_depth = 0.005  # m: the ring's boxes reach this far along its axis from its centre
    miss_tol = 0.01  # m: a bar this far off the ring's axis in its plane went past the ring, not through it

    def _grasp_pose(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None]:
        raw = self.env.raw
        handle = raw.needle_point("handle") - [0.0, 0.0, self.grasp_depth]
        across = _heading(self._needle_rot()[:, 0])  # the fingers close along the gripper's x axis
        if self._phase == 0 and self._phase_steps == 1:
            self._episode_state["grasp_turn"] = self._grasp_turn(across, float(obs["robot0_joint_pos"][6]))
            self._episode_state["grasp_from"] = self._eef_yaw()
        turn = self._episode_state["grasp_turn"] + _wrap(
            across - self._episode_state["grasp_from"] - self._episode_state["grasp_turn"], np.pi
        )
        return handle, self._episode_state["grasp_from"] + turn

    def _grasp_turn(self, across: float, wrist: float) -> float:
        """The gripper's turn to the grasp yaw: the shortest one after which the needle's turn to the
        ring's axis keeps the wrist in range (turning the gripper by +a turns the last joint by -a)."""
        after = _wrap(_heading(self._insert_dir()) - _heading(self._tip_dir()), 2 * np.pi)
        base = _wrap(across - self._eef_yaw(), np.pi)
        turns = [base + k * np.pi for k in range(-2, 3)]
        safe = [t for t in turns if max(abs(wrist - t), abs(wrist - t - after)) < self.wrist_limit]
        return min(safe or turns, key=abs)

    def _after_grasp(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None, float]:
        raw = self.env.raw
        eef = self._eef_pos()
        tip = raw.needle_point("tip")
        ring = raw.ring_centre()
        direction = self._insert_dir()
        yaw_error = _wrap(_heading(direction) - _heading(self._tip_dir()), 2 * np.pi)
        yaw = self._eef_yaw() + yaw_error
        if self._phase == 3:  # straight up
            grasp = self._episode_state["grasp"]
            if eef[2] > grasp[2] + self.lift - 0.01:
                self._advance()
            return grasp + [0.0, 0.0, self.lift], None, _CLOSE
        if self._phase == 4:  # carry the handle to where it will be when the tip is lined up, turning
            handle = raw.needle_point("handle")
            goal = ring - direction * (self.standoff + np.linalg.norm(handle - tip))
            if np.linalg.norm(goal - handle) < 0.01 and abs(yaw_error) < 0.1:
                self._advance()
            return eef + goal - handle, yaw, _CLOSE
        if self._phase == 5:  # the tip in front of the hole, the needle along the ring's axis
            goal = ring - direction * self.standoff
            lined_up = np.linalg.norm(goal - tip) < self.align_tol and abs(yaw_error) < self.align_yaw_tol
            if lined_up or self._phase_steps >= self.align_steps:
                self._advance()
            return eef + goal - tip, yaw, _CLOSE
        # push: the bar's point in the ring's plane kept on the ring's axis, the tip moved on ahead
        bar = self._tip_dir()
        behind = float(np.dot(ring - tip, direction))  # > 0 while the tip is short of the ring's centre
        in_plane = tip - bar * max(-behind, 0.0) / max(float(np.dot(bar, direction)), 0.5)
        off_axis = (ring - in_plane) - direction * np.dot(ring - in_plane, direction)
        ahead = np.clip(self.insert_depth + behind, 0.0, self.push_step)
        off = np.linalg.norm(off_axis)
        if behind > -self.ring_half_depth and off > self.push_tol:
            ahead = 0.0  # not through the ring and off its axis: line up before pushing on
        missed = behind < -self.ring_half_depth and off > self.miss_tol
        if missed or self._phase_steps >= self.insert_steps:  # beside the ring or jammed: line up again
            self._phase, self._phase_steps = 5, 0
        return eef + off_axis + direction * ahead, yaw, _CLOSE

    def _needle_rot(self) -> np.ndarray:
        raw = self.env.raw
        return raw.sim.data.body_xmat[raw.obj_body_id["needle_obj"]].reshape(3, 3)

    def _tip_dir(self) -> np.ndarray:
        """Unit vector from the handle toward the tip."""
        return -self._needle_rot()[:, 1]

    def _insert_dir(self) -> np.ndarray:
        """Unit vector along the ring's axis pointing away from the needle's starting side."""
        raw = self.env.raw
        axis = raw.ring_axis()
        if "insert_dir" not in self._episode_state:
            towards_needle = raw.needle_point("handle") - raw.ring_centre()
            self._episode_state["insert_dir"] = -axis if np.dot(axis, towards_needle) > 0 else axis
        return self._episode_state["insert_dir"]
