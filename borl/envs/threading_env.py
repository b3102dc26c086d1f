"""MimicGen's Threading_D0 rebuilt on robosuite 1.5 from primitive geoms: thread a needle through a ring.

A needle (a thin bar with a cube handle) lies on the table to the robot's left; a tripod holding a small
square ring stands fixed to its right, the ring's axis along the world y axis. Success, as MimicGen
measures it: the centre of the needle's bar within 0.012 m (the ring's outer half-width) of the ring's
centre, which means the needle pushed about halfway through the ring.

Importing this module registers the environment with robosuite under the class name `Threading_D0`
(MimicGen's name, so that MimicGen's Threading_D0 files name the same environment); borl imports it
whenever it imports robosuite.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import robosuite.utils.transform_utils as T
from robosuite.environments.manipulation.manipulation_env import ManipulationEnv
from robosuite.models.arenas import TableArena
from robosuite.models.objects import CompositeObject
from robosuite.models.tasks import ManipulationTask
from robosuite.utils.observables import Observable, sensor
from robosuite.utils.placement_samplers import SequentialCompositeSampler, UniformRandomSampler

# Needle (half sizes, metres): a bar ending in a cube handle, laid along the object's y axis, tip at -y.
NEEDLE_BAR = (0.005, 0.06, 0.005)
NEEDLE_HANDLE = 0.02
NEEDLE_BAR_CENTRE = np.array([0.0, -0.02, 0.0])  # the bar spans y in [-0.08, 0.04], the handle [0.04, 0.08]
NEEDLE_HANDLE_CENTRE = np.array([0.0, 0.06, 0.0])
NEEDLE_POINTS = {"tip": np.array([0.0, -0.08, 0.0]), "bar": NEEDLE_BAR_CENTRE, "handle": NEEDLE_HANDLE_CENTRE}

# Tripod (half sizes): a 6 x 6 grid of small boxes in the object's y-z plane with its inner 4 x 4 left
# out (20 boxes; a 0.016 m square hole), the ring's axis along the object's x axis; under it a post, a
# square base plate and three capsule legs leaning in by 30 degrees.
TRIPOD_HALF = (0.05, 0.05, 0.1)
RING_CELL = (0.005, 0.002, 0.002)
RING_CELLS = 6
RING_BOXES = RING_CELLS**2 - (RING_CELLS - 2) ** 2  # 20
RING_CENTRE = np.array([0.0, 0.0, 0.088])  # in the tripod's frame
RING_RADIUS = RING_CELL[1] * RING_CELLS  # 0.012: the success radius
LEG_RADIUS, LEG_HALF_LENGTH, LEG_LEAN = 0.01, 0.03, np.pi / 6
LEG_XY = ((-0.04, -0.04), (-0.04, 0.04), (0.04, 0.0))

# Placements (MimicGen's Threading_D0), relative to the table's top centre.
NEEDLE_X, NEEDLE_Y, NEEDLE_YAW = (-0.2, -0.05), (0.15, 0.25), (-2 * np.pi / 3, -np.pi / 3)
TRIPOD_XY, TRIPOD_YAW = (0.0, -0.15), np.pi / 2

# Low friction on the needle's bar and the ring, as in MimicGen, so the bar slides through.
_SLIPPERY = (0.3, 5e-3, 1e-4)


def _geoms(specs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """CompositeObject's per-geom argument lists from one dict per geom (missing keys become None)."""
    keys = (
        "geom_types",
        "geom_locations",
        "geom_sizes",
        "geom_quats",
        "geom_names",
        "geom_rgbas",
        "geom_frictions",
    )
    return {key: [spec.get(key) for spec in specs] for key in keys}


def needle_object(name: str = "needle_obj") -> CompositeObject:
    """The needle: a 0.12 m bar of 0.01 m square section, centred on one face of a 0.04 m cube handle."""
    rgba = (0.35, 0.2, 0.1, 1.0)
    specs = [
        {
            "geom_types": "box",
            "geom_locations": tuple(NEEDLE_BAR_CENTRE),
            "geom_sizes": NEEDLE_BAR,
            "geom_names": "needle",
            "geom_rgbas": rgba,
            "geom_frictions": _SLIPPERY,
        },
        {
            "geom_types": "box",
            "geom_locations": tuple(NEEDLE_HANDLE_CENTRE),
            "geom_sizes": (NEEDLE_HANDLE,) * 3,
            "geom_names": "handle",
            "geom_rgbas": rgba,
        },
    ]
    return CompositeObject(
        name=name,
        total_size=(NEEDLE_HANDLE, 0.08, NEEDLE_HANDLE),
        locations_relative_to_center=True,
        density=100.0,
        **_geoms(specs),
    )


def _leg_quat(x: float, y: float) -> tuple[float, ...]:
    """wxyz quaternion tilting a capsule's axis (z) by LEG_LEAN so that its top leans toward the centre."""
    axis = np.cross([0.0, 0.0, 1.0], [-x, -y, 0.0])
    axis /= np.linalg.norm(axis)
    return tuple(np.append(np.cos(LEG_LEAN / 2), np.sin(LEG_LEAN / 2) * axis))


def ring_tripod_object(name: str = "tripod_obj") -> CompositeObject:
    """The tripod: a ring of 20 boxes (outer side 0.024 m, hole 0.016 m) on a post, base plate and legs."""
    rgba = (0.8, 0.65, 0.45, 1.0)
    specs = []
    for k in range(RING_CELLS):  # rows along z
        for j in range(RING_CELLS):  # columns along y
            if 0 < k < RING_CELLS - 1 and 0 < j < RING_CELLS - 1:
                continue  # the hole
            offset = 2 * np.array([0.0, RING_CELL[1] * j, RING_CELL[2] * k])
            corner = RING_CENTRE - np.array([0.0, RING_RADIUS - RING_CELL[1], RING_RADIUS - RING_CELL[2]])
            specs.append(
                {
                    "geom_types": "box",
                    "geom_locations": tuple(corner + offset),
                    "geom_sizes": RING_CELL,
                    "geom_names": f"ring_{len(specs)}",
                    "geom_rgbas": rgba,
                    "geom_frictions": _SLIPPERY,
                }
            )
    leg_z = -TRIPOD_HALF[2] + LEG_RADIUS + LEG_HALF_LENGTH
    for i, (x, y) in enumerate(LEG_XY):
        specs.append(
            {
                "geom_types": "capsule",
                "geom_locations": (x, y, leg_z),
                "geom_sizes": (LEG_RADIUS, LEG_HALF_LENGTH),
                "geom_quats": _leg_quat(x, y),
                "geom_names": f"tripod_{i}",
                "geom_rgbas": rgba,
            }
        )
    base_half, post_half = 0.005, 0.005
    base_z = leg_z + LEG_HALF_LENGTH + LEG_RADIUS + base_half
    ring_bottom = RING_CENTRE[2] - RING_RADIUS
    post_bottom = base_z + base_half
    specs.append(
        {
            "geom_types": "box",
            "geom_locations": (0.0, 0.0, base_z),
            "geom_sizes": (TRIPOD_HALF[0], TRIPOD_HALF[1], base_half),
            "geom_names": "post_0",
            "geom_rgbas": rgba,
        }
    )
    specs.append(
        {
            "geom_types": "box",
            "geom_locations": (0.0, 0.0, (post_bottom + ring_bottom) / 2),
            "geom_sizes": (post_half, post_half, (ring_bottom - post_bottom) / 2),
            "geom_names": "post_1",
            "geom_rgbas": rgba,
        }
    )
    return CompositeObject(
        name=name,
        total_size=TRIPOD_HALF,
        locations_relative_to_center=True,
        density=100.0,
        **_geoms(specs),
    )


class Threading_D0(ManipulationEnv):  # MimicGen's name, hence not CamelCase
    """Threading on a 0.8 x 0.8 m table: the needle placed at random, the tripod fixed; sparse reward 1.

    Object observations (modality "object", concatenated into `object-state`, 28 numbers, MimicGen's
    layout): for the needle then the tripod, its position (3), quaternion xyzw (4), and its pose in the
    gripper's frame, position (3) and quaternion xyzw (4).
    """

    def __init__(
        self,
        robots: Any,
        env_configuration: str = "default",
        controller_configs: Any = None,
        gripper_types: Any = "default",
        base_types: Any = "default",
        initialization_noise: Any = "default",
        table_full_size: tuple[float, float, float] = (0.8, 0.8, 0.05),
        table_friction: tuple[float, float, float] = (1.0, 5e-3, 1e-4),
        use_camera_obs: bool = True,
        use_object_obs: bool = True,
        reward_scale: float | None = 1.0,
        reward_shaping: bool = False,
        has_renderer: bool = False,
        has_offscreen_renderer: bool = True,
        render_camera: str = "frontview",
        render_collision_mesh: bool = False,
        render_visual_mesh: bool = True,
        render_gpu_device_id: int = -1,
        control_freq: float = 20,
        lite_physics: bool = True,
        horizon: int = 1000,
        ignore_done: bool = False,
        hard_reset: bool = True,
        camera_names: Any = "agentview",
        camera_heights: Any = 256,
        camera_widths: Any = 256,
        camera_depths: Any = False,
        camera_segmentations: Any = None,
        renderer: str = "mjviewer",
        renderer_config: Any = None,
        seed: int | None = None,
    ) -> None:
        self.table_full_size = table_full_size
        self.table_friction = table_friction
        self.table_offset = np.array((0.0, 0.0, 0.8))
        self.reward_scale = reward_scale
        self.reward_shaping = reward_shaping
        self.use_object_obs = use_object_obs
        super().__init__(
            robots=robots,
            env_configuration=env_configuration,
            controller_configs=controller_configs,
            base_types=base_types,
            gripper_types=gripper_types,
            initialization_noise=initialization_noise,
            use_camera_obs=use_camera_obs,
            has_renderer=has_renderer,
            has_offscreen_renderer=has_offscreen_renderer,
            render_camera=render_camera,
            render_collision_mesh=render_collision_mesh,
            render_visual_mesh=render_visual_mesh,
            render_gpu_device_id=render_gpu_device_id,
            control_freq=control_freq,
            lite_physics=lite_physics,
            horizon=horizon,
            ignore_done=ignore_done,
            hard_reset=hard_reset,
            camera_names=camera_names,
            camera_heights=camera_heights,
            camera_widths=camera_widths,
            camera_depths=camera_depths,
            camera_segmentations=camera_segmentations,
            renderer=renderer,
            renderer_config=renderer_config,
            seed=seed,
        )

    def reward(self, action: Any = None) -> float:
        """1 (times reward_scale) when the needle is threaded, else 0; there is no shaped reward."""
        reward = 1.0 if self._check_success() else 0.0
        return reward * self.reward_scale if self.reward_scale is not None else reward

    def _load_model(self) -> None:
        super()._load_model()
        xpos = self.robots[0].robot_model.base_xpos_offset["table"](self.table_full_size[0])
        self.robots[0].robot_model.set_base_xpos(xpos)
        arena = TableArena(
            table_full_size=self.table_full_size,
            table_friction=self.table_friction,
            table_offset=self.table_offset,
        )
        arena.set_origin([0, 0, 0])
        self.needle = needle_object()
        self.tripod = ring_tripod_object()
        self.placement_initializer = SequentialCompositeSampler(name="ObjectSampler")
        needle = self._sampler("NeedleSampler", self.needle, NEEDLE_X, NEEDLE_Y, NEEDLE_YAW, 0.0)
        x, y = TRIPOD_XY
        tripod = self._sampler("TripodSampler", self.tripod, (x, x), (y, y), (TRIPOD_YAW,) * 2, 0.001)
        self.placement_initializer.append_sampler(needle)
        self.placement_initializer.append_sampler(tripod)
        self.model = ManipulationTask(
            mujoco_arena=arena,
            mujoco_robots=[robot.robot_model for robot in self.robots],
            mujoco_objects=[self.needle, self.tripod],
        )

    def _sampler(
        self,
        name: str,
        obj: CompositeObject,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        yaw_range: tuple[float, float],
        z_offset: float,
    ) -> UniformRandomSampler:
        """A placement of obj on the table: uniform in x, y and yaw over the given ranges."""
        return UniformRandomSampler(
            name=name,
            mujoco_objects=obj,
            x_range=x_range,
            y_range=y_range,
            rotation=yaw_range,
            rotation_axis="z",
            ensure_object_boundary_in_range=False,
            ensure_valid_placement=True,
            reference_pos=self.table_offset,
            z_offset=z_offset,
            rng=self.rng,
        )

    def _setup_references(self) -> None:
        super()._setup_references()
        model = self.sim.model
        self.obj_body_id = OrderedDict(
            needle_obj=model.body_name2id(self.needle.root_body),
            tripod_obj=model.body_name2id(self.tripod.root_body),
        )
        self.needle_geom_id = model.geom_name2id(f"{self.needle.naming_prefix}needle")
        self.ring_geom_ids = [
            model.geom_name2id(f"{self.tripod.naming_prefix}ring_{i}") for i in range(RING_BOXES)
        ]

    def _reset_internal(self) -> None:
        super()._reset_internal()
        if not self.deterministic_reset:
            for pos, quat, obj in self.placement_initializer.sample().values():
                self.sim.data.set_joint_qpos(obj.joints[0], np.concatenate([pos, quat]))

    def _setup_observables(self) -> OrderedDict:
        observables = super()._setup_observables()
        if self.use_object_obs:
            for obj_name in self.obj_body_id:
                for name, obs_sensor in self._object_sensors(obj_name):
                    observables[name] = Observable(
                        name=name, sensor=obs_sensor, sampling_rate=self.control_freq
                    )
        return observables

    def _object_sensors(self, obj_name: str) -> list[tuple[str, Any]]:
        """(name, sensor) for one object's world pose and its pose in the gripper's frame."""
        body = self.obj_body_id[obj_name]
        pf = self.robots[0].robot_model.naming_prefix

        @sensor(modality="object")
        def pos(obs_cache: dict) -> np.ndarray:
            return np.array(self.sim.data.body_xpos[body])

        @sensor(modality="object")
        def quat(obs_cache: dict) -> np.ndarray:
            return T.convert_quat(np.array(self.sim.data.body_xquat[body]), to="xyzw")

        @sensor(modality="object")
        def to_eef_pos(obs_cache: dict) -> np.ndarray:
            return self._pose_in_gripper(body)[0]

        @sensor(modality="object")
        def to_eef_quat(obs_cache: dict) -> np.ndarray:
            return self._pose_in_gripper(body)[1]

        return [
            (f"{obj_name}_pos", pos),
            (f"{obj_name}_quat", quat),
            (f"{obj_name}_to_{pf}eef_pos", to_eef_pos),
            (f"{obj_name}_to_{pf}eef_quat", to_eef_quat),
        ]

    def _pose_in_gripper(self, body: int) -> tuple[np.ndarray, np.ndarray]:
        """A body's (position, xyzw quaternion) in the frame of robot0_eef_pos and robot0_eef_quat."""
        robot = self.robots[0]
        eef_pos = self.sim.data.site_xpos[robot.eef_site_id["right"]]
        hand = self.sim.data.get_body_xquat(robot.robot_model.eef_name["right"])
        eef_quat = T.convert_quat(hand, to="xyzw")
        obj_quat = T.convert_quat(np.array(self.sim.data.body_xquat[body]), to="xyzw")
        world_in_gripper = T.pose_inv(T.pose2mat((eef_pos, eef_quat)))
        obj_pose = T.pose2mat((self.sim.data.body_xpos[body], obj_quat))
        return T.mat2pose(world_in_gripper @ obj_pose)

    def needle_point(self, name: str) -> np.ndarray:
        """World position of a point of NEEDLE_POINTS: "tip", "bar" (the bar's centre) or "handle"."""
        body = self.obj_body_id["needle_obj"]
        rot = self.sim.data.body_xmat[body].reshape(3, 3)
        return self.sim.data.body_xpos[body] + rot @ NEEDLE_POINTS[name]

    def ring_centre(self) -> np.ndarray:
        """The centre of the ring's hole: the mean of its 20 boxes' positions."""
        return np.mean(self.sim.data.geom_xpos[self.ring_geom_ids], axis=0)

    def ring_axis(self) -> np.ndarray:
        """Unit vector along the ring's axis (the tripod's x axis), pointing out of its hole on that side."""
        return self.sim.data.body_xmat[self.obj_body_id["tripod_obj"]].reshape(3, 3)[:, 0].copy()

    def _check_success(self) -> bool:
        """The needle's bar centre within RING_RADIUS of the ring's centre (MimicGen's test)."""
        bar_centre = self.sim.data.geom_xpos[self.needle_geom_id]
        return bool(np.linalg.norm(bar_centre - self.ring_centre()) < RING_RADIUS)
