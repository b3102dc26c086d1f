"""robosuite 1.5.2's control step for a Panda under OSC_POSE, compiled: all physics substeps of one
action in one numba call over MuJoCo's own C functions (mj_step1, mj_step2, mj_jacSite, mj_fullM).

The control law is robosuite's (`OperationalSpaceController.run_controller`, the robot's torque
clipping): the kernel calls robosuite's own jitted `opspace_matrices`, `orientation_error` and
`nullspace_torques`, and reads gains, limits and indices from the live controller objects. The goal and
the gripper's command are still set by robosuite's Python once per action, at the first substep as
robosuite does, so robosuite's controller state stays the state a later robosuite step continues from;
that substep's torques use the controller's stored state, as robosuite's do. The arithmetic is
robosuite's in robosuite's order (down to the mass matrix's memory order, which decides how BLAS sums),
so states are equal bit for bit. What the fast step skips: robosuite's per-substep observable sampling
(its timers are advanced, and the object poses that Can's and Square's relative sensors read from
the mid-step sample are taken at that substep), its reward, and the robot's proprioceptive history
buffers; borl recomputes observations from the simulator after the step, where `observe` samples only
the observables its flat keys need (robosuite's whole dict is built when an expert asks for it).
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import cache
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic
from robosuite.utils.control_utils import nullspace_torques, opspace_matrices, orientation_error

from borl.errors import BorlError

# The MuJoCo functions the kernel calls, in the order of the address array passed to it.
_FUNCTIONS = ("mj_step1", "mj_step2", "mj_jacSite", "mj_fullM")
_STEP1, _STEP2, _JAC_SITE, _FULL_M = range(len(_FUNCTIONS))
# robosuite's controller attributes that `_reference` computes, in its out order.
_CONTROLLER_STATE = (
    "ref_pos", "ref_ori_mat", "ref_pos_vel", "ref_ori_vel", "J_pos", "J_ori", "J_full",
    "joint_pos", "joint_vel", "mass_matrix",
)  # fmt: skip


@cache
def mujoco_function_addresses() -> np.ndarray:
    """The addresses of _FUNCTIONS in the libmujoco the mujoco package loaded (the same copy)."""
    import mujoco

    found = sorted(glob.glob(os.path.join(os.path.dirname(mujoco.__file__), "libmujoco.so*")))
    if not found:
        raise BorlError("the fast controller needs libmujoco.so from the mujoco package; it is not there")
    lib = ctypes.CDLL(found[-1])
    return np.array(
        [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in _FUNCTIONS], np.uint64
    )


def _pointer(builder: Any, value: Any) -> Any:
    return builder.inttoptr(value, ir.IntType(8).as_pointer())


@intrinsic
def _call_model_data(typingctx: Any, function: Any, model: Any, data: Any) -> Any:
    """function(model, data) for a C function `void f(const mjModel*, mjData*)` at address function."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        pointer = ir.IntType(8).as_pointer()
        callee = builder.inttoptr(args[0], ir.FunctionType(ir.VoidType(), [pointer, pointer]).as_pointer())
        builder.call(callee, [_pointer(builder, args[1]), _pointer(builder, args[2])])

    return types.void(types.uint64, types.uint64, types.uint64), codegen


@intrinsic
def _call_jac_site(
    typingctx: Any, function: Any, model: Any, data: Any, jacp: Any, jacr: Any, site: Any
) -> Any:
    """mj_jacSite(model, data, jacp, jacr, site) with jacp/jacr addresses (0 for NULL)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        pointer = ir.IntType(8).as_pointer()
        kind = ir.FunctionType(ir.VoidType(), [pointer] * 4 + [ir.IntType(32)])
        callee = builder.inttoptr(args[0], kind.as_pointer())
        site32 = builder.trunc(args[5], ir.IntType(32))
        builder.call(callee, [_pointer(builder, value) for value in args[1:5]] + [site32])

    return types.void(
        types.uint64, types.uint64, types.uint64, types.uint64, types.uint64, types.int64
    ), codegen


@intrinsic
def _call_full_m(typingctx: Any, function: Any, model: Any, dst: Any, sparse: Any) -> Any:
    """mj_fullM(model, dst, M): the dense mass matrix from MuJoCo's sparse qM."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        pointer = ir.IntType(8).as_pointer()
        callee = builder.inttoptr(args[0], ir.FunctionType(ir.VoidType(), [pointer] * 3).as_pointer())
        builder.call(callee, [_pointer(builder, value) for value in args[1:4]])

    return types.void(types.uint64, types.uint64, types.uint64, types.uint64), codegen


@numba.njit(cache=True, nogil=True)
def _arm_torques(
    origin_pos,
    origin_ori,
    ref_pos,
    ref_ori_mat,
    ref_pos_vel,
    ref_ori_vel,
    base_pos_vel,
    base_ori_vel,
    j_pos,
    j_ori,
    j_full,
    mass_matrix,
    joint_pos,
    joint_vel,
    goal_pos,
    goal_ori,
    kp,
    kd,
    initial_joint,
    bias,
):
    """robosuite's OSC_POSE torques (fixed impedance, base-frame goal, decoupled) plus the bias forces."""
    desired_world_pos = origin_pos + np.dot(origin_ori, goal_pos)
    desired_world_ori = np.dot(origin_ori, goal_ori)
    ori_error = orientation_error(desired_world_ori, ref_ori_mat)
    position_error = desired_world_pos - ref_pos
    vel_pos_error = -(ref_pos_vel - base_pos_vel)
    desired_force = position_error * kp[0:3] + vel_pos_error * kd[0:3]
    vel_ori_error = -(ref_ori_vel - base_ori_vel)
    desired_torque = ori_error * kp[3:6] + vel_ori_error * kd[3:6]
    lambda_full, lambda_pos, lambda_ori, nullspace_matrix = opspace_matrices(
        mass_matrix, j_full, j_pos, j_ori
    )
    decoupled = np.concatenate((np.dot(lambda_pos, desired_force), np.dot(lambda_ori, desired_torque)))
    torques = np.dot(j_full.T, decoupled) + bias
    return torques + nullspace_torques(mass_matrix, nullspace_matrix, initial_joint, joint_pos, joint_vel)


@numba.njit(cache=True, nogil=True)
def _reference(functions, model, data, sim, site, qpos_index, qvel_index, out):
    """robosuite's `Controller.update` (lite physics) for the arm's reference site, into out: the site's
    pose and velocity, its Jacobians and the arm's joints' positions, velocities and mass matrix."""
    qpos, qvel, qM, site_xpos, site_xmat = sim[0], sim[1], sim[2], sim[4], sim[5]
    ref_pos, ref_ori_mat, ref_pos_vel, ref_ori_vel, j_pos, j_ori, j_full, joint_pos, joint_vel, mass = out
    nv, n = qvel.shape[0], qvel_index.shape[0]
    jacp, jacr, full_mass = np.zeros((3, nv)), np.zeros((3, nv)), np.zeros((nv, nv))
    ref_pos[:] = site_xpos[site]
    ref_ori_mat[:, :] = site_xmat[site].reshape((3, 3))
    _call_jac_site(functions[_JAC_SITE], model, data, jacp.ctypes.data, 0, site)
    _call_jac_site(functions[_JAC_SITE], model, data, 0, jacr.ctypes.data, site)
    ref_pos_vel[:] = np.dot(jacp, qvel)
    ref_ori_vel[:] = np.dot(jacr, qvel)
    _call_full_m(functions[_FULL_M], model, full_mass.ctypes.data, qM.ctypes.data)
    for k in range(n):
        joint_pos[k] = qpos[qpos_index[k]]
        joint_vel[k] = qvel[qvel_index[k]]
        for row in range(3):
            j_pos[row, k] = j_full[row, k] = jacp[row, qvel_index[k]]
            j_ori[row, k] = j_full[row + 3, k] = jacr[row, qvel_index[k]]
        for col in range(n):
            mass[k, col] = full_mass[qvel_index[k], qvel_index[col]]


def _controller_state(n: int) -> tuple[np.ndarray, ...]:
    """Empty arrays shaped as `_reference`'s out for an arm of n joints. The mass matrix is Fortran-
    ordered, as robosuite's fancy indexing leaves it: BLAS then sums its products in robosuite's order."""
    shapes = ((3,), (3, 3), (3,), (3,), (3, n), (3, n), (6, n), (n,), (n,))
    return (*(np.empty(shape) for shape in shapes), np.empty((n, n), order="F"))


@numba.njit(cache=True, nogil=True)
def _substeps(functions, model, data, sim, substeps, sites, indices, limits, goal, stored, snapshot):
    """Run the arm's controller and the physics for `substeps` substeps. The first substep's mj_step1
    has run already and its controller state is `stored` (robosuite's controller's, as `_reference`'s
    out); the bodies' poses after substep snapshot[0] (if any) are copied to snapshot[1:]."""
    qfrc_bias, site_xpos, site_xmat, ctrl, xpos, xquat = sim[3], sim[4], sim[5], sim[6], sim[7], sim[8]
    eef_site, base_site = sites
    qpos_index, qvel_index, arm_actuators = indices
    torque_low, torque_high = limits
    goal_pos, goal_ori, kp, kd, initial_joint = goal
    n, nv = qvel_index.shape[0], sim[1].shape[0]
    base_jacp, base_jacr = np.zeros((3, nv)), np.zeros((3, nv))
    current = (
        np.empty(3), np.empty((3, 3)), np.empty(3), np.empty(3), np.empty((3, n)), np.empty((3, n)),
        np.empty((6, n)), np.empty(n), np.empty(n), np.empty((n, n)).T,
    )  # fmt: skip
    bias = np.empty(n)
    for substep in range(substeps):
        state = stored
        if substep > 0:
            _call_model_data(functions[_STEP1], model, data)
            _reference(functions, model, data, sim, eef_site, qpos_index, qvel_index, current)
            state = current
        ref_pos, ref_ori_mat, ref_pos_vel, ref_ori_vel, j_pos, j_ori, j_full, joint_pos, joint_vel, mass = (
            state
        )
        origin_pos = site_xpos[base_site].copy()
        origin_ori = site_xmat[base_site].reshape((3, 3)).copy()
        _call_jac_site(functions[_JAC_SITE], model, data, base_jacp.ctypes.data, 0, base_site)
        _call_jac_site(functions[_JAC_SITE], model, data, 0, base_jacr.ctypes.data, base_site)
        for k in range(n):
            bias[k] = qfrc_bias[qvel_index[k]]
        torques = _arm_torques(
            origin_pos, origin_ori, ref_pos, ref_ori_mat, ref_pos_vel, ref_ori_vel,
            np.dot(base_jacp, sim[1]), np.dot(base_jacr, sim[1]), j_pos, j_ori, j_full, mass,
            joint_pos, joint_vel, goal_pos, goal_ori, kp, kd, initial_joint, bias,
        )  # fmt: skip
        for k in range(arm_actuators.shape[0]):
            ctrl[arm_actuators[k]] = min(max(torques[k], torque_low[k]), torque_high[k])
        _call_model_data(functions[_STEP2], model, data)
        if substep == snapshot[0]:
            snapshot[1][:] = xpos
            snapshot[2][:] = xquat


def _f64(value: Any) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.float64)


class FastOSC:
    """Steps one robosuite environment (a single Panda-like arm and gripper, OSC_POSE, lite physics)
    through the compiled kernel; `step` leaves the simulator where `raw.step` would."""

    def __init__(self, raw: Any) -> None:
        check_supported(raw)
        self.raw = raw
        self.arm_name = raw.robots[0].arms[0]
        self.gripper_name = raw.robots[0].get_gripper_name(self.arm_name)
        self.substeps = int(round(raw.control_timestep / raw.model_timestep))
        self.functions = mujoco_function_addresses()
        self._stale_names: dict[tuple[str, ...], frozenset[str]] = {}
        self._plans: dict[tuple, tuple[list[Any], dict[str, tuple[str, ...] | None]]] = {}
        self._replaced: dict[str, Any] = {}  # the cache entries the last `observe` replaced
        self._bound: tuple | None = None

    def _bind(self, arm: Any) -> tuple:
        """What stays fixed while this controller object and this MjData live: the simulator's arrays,
        site and index arrays, torque limits, the gripper's actuators and its command's limits."""
        sim, robot = self.raw.sim, self.raw.robots[0]
        data = sim.data._data
        arrays = (
            data.qpos, data.qvel, data.qM, data.qfrc_bias, data.site_xpos, data.site_xmat, data.ctrl,
            data.xpos, data.xquat,
        )  # fmt: skip
        arm_index = np.asarray(robot._ref_actuators_indexes_dict[self.arm_name], dtype=np.int64)
        grip_index = np.asarray(robot._ref_actuators_indexes_dict[self.gripper_name], dtype=np.int64)
        ranges = sim.model._model.actuator_ctrlrange
        sites = (
            sim.model.site_name2id(arm.ref_name),
            sim.model.site_name2id(f"{arm.naming_prefix}{arm.part_name}_center"),
        )
        indices = (np.asarray(arm.qpos_index, dtype=np.int64), np.asarray(arm.qvel_index, dtype=np.int64))
        limits = (_f64(ranges[arm_index, 0]), _f64(ranges[arm_index, 1]))
        grip = (grip_index, _f64(ranges[grip_index, 0]), _f64(ranges[grip_index, 1]))
        snapshot = (np.empty_like(data.xpos), np.empty_like(data.xquat))
        return arm, data, arrays, sites, (*indices, arm_index), limits, grip, snapshot

    def step(self, action: np.ndarray, forwarded: bool = False) -> None:
        """Apply one action over all physics substeps (no observation, reward or done). forwarded: the
        simulator has not changed since a full forward pass (`sim.forward()`, which computes all that
        mj_step1 does, in mj_step1's order), so the first substep's mj_step1 would only repeat it."""
        raw = self.raw
        sim = raw.sim
        model, data = sim.model._model, sim.data._data
        composite = raw.robots[0].composite_controller  # rebuilt at each reset
        arm = composite.part_controllers[self.arm_name]
        if self._bound is None or self._bound[0] is not arm or self._bound[1] is not data:
            self._bound = self._bind(arm)
        _, _, arrays, sites, indices, limits, grip, snapshot = self._bound
        functions, model_address, data_address = self.functions, model._address, data._address
        if not forwarded:
            sim.step1()
        composite.update_state()
        if arm.new_update:  # set_goal's own update(), compiled; robosuite skips it right after a reset
            state = _controller_state(len(indices[1]))
            _reference(
                functions, model_address, data_address, arrays, sites[0], indices[0], indices[1], state
            )
            for name, value in zip(_CONTROLLER_STATE[:7], state[:7], strict=True):
                getattr(arm, name)[...] = value  # in place, as robosuite writes them
            arm.joint_pos, arm.joint_vel, arm.mass_matrix = state[7:]
            arm.new_update = False
        composite.set_goal(np.asarray(action, dtype=np.float64))
        grip_index, grip_low, grip_high = grip
        arrays[6][grip_index] = np.clip(
            composite.part_controllers[self.gripper_name].run_controller(), grip_low, grip_high
        )
        stale, snapshot_substep = self._advance_observables()
        _substeps(
            functions,
            model_address,
            data_address,
            arrays,
            self.substeps,
            sites,
            indices,
            limits,
            (_f64(arm.goal_pos), _f64(arm.goal_ori), _f64(arm.kp), _f64(arm.kd), _f64(arm.initial_joint)),
            (
                _f64(arm.ref_pos),
                _f64(arm.ref_ori_mat),
                _f64(arm.ref_pos_vel),
                _f64(arm.ref_ori_vel),
                _f64(arm.J_pos),
                _f64(arm.J_ori),
                _f64(arm.J_full),
                _f64(arm.joint_pos),
                _f64(arm.joint_vel),
                np.asfortranarray(arm.mass_matrix),
            ),  # fmt: skip
            (snapshot_substep, *snapshot),
        )
        arm.new_update = True
        raw.timestep += 1
        raw.cur_time += raw.control_timestep
        if stale:
            self._resample(stale, *snapshot)

    def observe(self, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        """robosuite's `_get_observations(force_update=True)` restricted to keys (observable names, or a
        modality's "-state" concatenation such as "object-state"), in the current state: only the
        observables those keys need are sampled, with robosuite's own sensors in robosuite's order, so
        their values and the observation cache are robosuite's; every enabled observable's timer advances
        as that forced update would advance it. `observation_dict` then gives the whole dict."""
        raw = self.raw
        enabled = [observable for observable in raw._observables.values() if observable._enabled]
        signature = (keys, tuple((observable.name, observable._active) for observable in enabled))
        if signature not in self._plans:
            self._plans[signature] = _observation_plan(keys, enabled, raw.robots[0].robot_model.naming_prefix)
        sampled, states = self._plans[signature]
        cache = raw._obs_cache
        self._replaced = {observable.name: cache.get(observable.name) for observable in sampled}
        for observable in sampled:  # Observable.update(force=True)'s sampling
            value = np.array(observable._filter(observable._corrupter(observable._sensor(cache))))
            observable._current_observed_value = value[0] if value.shape == (1,) else value
            cache[observable.name] = np.array(observable._current_observed_value)
        timers: dict[tuple, tuple] = {}
        for observable in enabled:
            key = _timer_state(observable)
            if key not in timers:
                timers[key] = _forced_timer(*key, raw.model_timestep, observable._delayer)
            observable._time_since_last_sample, observable._sampled, observable._current_delay = timers[key]
        values = {}
        for key, members in states.items():
            if members is None:
                values[key] = raw._observables[key]._current_observed_value
            else:  # _get_observations' modality concatenation
                values[key] = np.concatenate(
                    [np.array(_as_array(raw._observables[name]._current_observed_value)) for name in members],
                    axis=-1,
                )
        return values

    def observation_dict(self) -> dict[str, np.ndarray]:
        """robosuite's whole `_get_observations(force_update=True)` dict in the current state, after
        `observe`: from the observation cache as `observe` found it (an object's relative pose reads the
        object's mid-step pose there), and with the timers that forced update advances put back, since
        `observe` advanced them."""
        cache = self.raw._obs_cache
        for name, value in self._replaced.items():
            if value is None:
                cache.pop(name, None)
            else:
                cache[name] = value
        timers = [
            (observable, observable._time_since_last_sample, observable._sampled, observable._current_delay)
            for observable in self.raw._observables.values()
        ]
        try:
            return self.raw._get_observations(force_update=True)
        finally:
            for observable, time_since, sampled, delay in timers:
                observable._time_since_last_sample, observable._sampled = time_since, sampled
                observable._current_delay = delay

    def _advance_observables(self) -> tuple[list[Any], int]:
        """Advance robosuite's observable timers over this action's substeps as its per-substep
        `_update_observables` would, without sampling; return the observables whose cached value a later
        full update reads before refreshing it (`_stale_reads`) and the substep at which they sample
        (-1: none)."""
        raw = self.raw
        enabled = [observable for observable in raw._observables.values() if observable._enabled]
        names = tuple(observable.name for observable in enabled)
        if names not in self._stale_names:
            self._stale_names[names] = _stale_reads(names)
        stale_names = self._stale_names[names]
        timers: dict[tuple, tuple] = {}
        stale, stale_hits = [], set()
        for observable in enabled:
            key = _timer_state(observable)
            if key not in timers:
                timers[key] = _advance_timer(*key, raw.model_timestep, self.substeps, observable._delayer)
            time_since, sampled, delay, hits = timers[key]
            observable._time_since_last_sample, observable._sampled = time_since, sampled
            observable._current_delay = delay
            if hits and observable.name in stale_names:
                stale.append(observable)
                stale_hits.add(hits[-1])
        if len(stale_hits) > 1:
            raise BorlError("the fast controller found object observables sampling at different substeps")
        return stale, (stale_hits.pop() if stale_hits else -1)

    def _resample(self, stale: list[Any], xpos: np.ndarray, xquat: np.ndarray) -> None:
        """Put into robosuite's observation cache the values the stale observables sampled mid-step
        (their sensors read the bodies' poses, here those of the snapshot)."""
        data = self.raw.sim.data._data
        current_xpos, current_xquat = data.xpos.copy(), data.xquat.copy()
        data.xpos[:], data.xquat[:] = xpos, xquat
        try:
            cache = self.raw._obs_cache
            for observable in stale:
                value = np.array(observable._filter(observable._corrupter(observable._sensor(cache))))
                cache[observable.name] = np.array(value[0] if value.shape == (1,) else value)
        finally:
            data.xpos[:], data.xquat[:] = current_xpos, current_xquat


def _stale_reads(names: tuple[str, ...]) -> frozenset[str]:
    """The observables (in robosuite's update order) whose value an earlier one reads from the cache:
    an object's `X_pos` and `X_quat` after its `X_to_..._eef` sensors (PickPlace and NutAssembly
    order them so), which therefore see the pose robosuite sampled mid-step."""
    stale, relative_seen = set(), set()
    for name in names:
        if "_to_" in name:
            relative_seen.add(name.split("_to_")[0])
        base = name.rsplit("_", 1)[0]
        if base in relative_seen and name in (f"{base}_pos", f"{base}_quat"):
            stale.add(name)
    return frozenset(stale)


def _observation_plan(
    keys: tuple[str, ...], enabled: list[Any], prefix: str
) -> tuple[list[Any], dict[str, tuple[str, ...] | None]]:
    """Which enabled observables `observe` samples for keys, in robosuite's order, and what each key
    is: an observable (None) or the active observables its modality concatenates. A modality's
    observables are all sampled, inactive ones too (Can's `world_pose_in_gripper` feeds its relative
    poses through the cache), and so are the end effector's pose observables, which robosuite's object
    sensors read from the cache."""
    names = {observable.name for observable in enabled}
    states: dict[str, tuple[str, ...] | None] = {}
    wanted = {f"{prefix}eef_pos", f"{prefix}eef_quat"} & names
    modalities = set()
    for key in keys:
        if key in names:
            states[key] = None
            wanted.add(key)
        elif key.endswith("-state"):
            modality = key.removesuffix("-state")
            modalities.add(modality)
            states[key] = tuple(o.name for o in enabled if o.modality == modality and o._active)
        else:
            raise BorlError(f"the fast controller cannot observe '{key}': no enabled observable of that name")
    sampled = [o for o in enabled if o.name in wanted or o.modality in modalities]
    return sampled, states


def _as_array(value: Any) -> Any:
    """A scalar as a one-element list, as `_get_observations` wraps it before concatenating."""
    return [value] if type(value) in {int, float} or not value.shape else value


def _forced_timer(
    time_since: float, sampled: bool, delay: float, period: float, dt: float, delayer: Any
) -> tuple[float, bool, float]:
    """robosuite's `Observable.update(force=True)` timer: the new (time since last sample, sampled,
    delay)."""
    time_since += dt
    sampled, delay = True, delayer()
    if time_since >= period:
        time_since %= period
        sampled = False
    return time_since, sampled, delay


def _advance_timer(
    time_since: float, sampled: bool, delay: float, period: float, dt: float, substeps: int, delayer: Any
) -> tuple[float, bool, float, list[int]]:
    """robosuite's `Observable.update` timer over `substeps` updates of dt (utils/observables.py):
    the new (time since last sample, sampled, delay) and the substeps at which it samples."""
    hits = []
    for substep in range(substeps):
        time_since += dt
        if not sampled and period - delay >= time_since:
            hits.append(substep)
            sampled, delay = True, delayer()
        if time_since >= period:
            if not sampled:
                hits.append(substep)
                delay = delayer()
            time_since %= period
            sampled = False
    return time_since, sampled, delay, hits


def check_supported(raw: Any) -> None:
    """Raise BorlError unless raw is what the kernel implements: one fixed-base robot whose only parts
    are an OSC_POSE arm (fixed impedance, delta input in the base frame, no interpolation, decoupled
    position and orientation) and a gripper, under lite physics."""
    if len(raw.robots) != 1 or not raw.lite_physics:
        raise BorlError("the fast controller supports one robot under lite physics")
    robot = raw.robots[0]
    parts = robot.composite_controller.part_controllers
    arm = parts.get(robot.arms[0]) if len(robot.arms) == 1 else None
    if arm is None or set(parts) != {robot.arms[0], robot.get_gripper_name(robot.arms[0])}:
        raise BorlError("the fast controller supports one arm and its gripper")
    settings = (
        arm.name,
        arm.impedance_mode,
        arm.input_type,
        arm.input_ref_frame,
        arm.uncoupling,
        arm.interpolator_pos,
        arm.interpolator_ori,
        arm.lite_physics,
    )
    if settings != ("OSC_POSE", "fixed", "delta", "base", True, None, None, True):
        raise BorlError(f"the fast controller supports robosuite's default OSC_POSE only, got {settings}")


def _timer_state(observable: Any) -> tuple:
    """What an observable's sampling timer advances from: time since its last sample, whether it has
    sampled, its current delay and its sampling period (robosuite's Observable fields)."""
    return (
        observable._time_since_last_sample,
        observable._sampled,
        observable._current_delay,
        observable._sampling_timestep,
    )
