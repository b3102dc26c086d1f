"""A robosuite task behind borl's TaskEnv interface: flat float32 observations, sparse reward,
terminate-on-success, and resets that depend only on the seed."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from borl.envs.base import TaskSpec, checked_action
from borl.envs.rendering import FrameRenderer
from borl.errors import BorlError

# borl's observation keys that robosuite names differently (robomimic uses borl's names).
_ROBOSUITE_KEY = {"object": "object-state"}

# Files whose import-time warnings (missing private macros, optional robot packages) are noise to us.
_IMPORT_NOISE_FILES = frozenset({"macros.py", "__init__.py"})

# The seed robosuite builds the scene with. It fixes construction-time randomness (Lift's cube size)
# so that every process builds the same scene; per-episode randomness is reseeded in reset().
_CONSTRUCTION_SEED = 0


def _quiet_robosuite(record: logging.LogRecord) -> bool:
    """Drop robosuite's INFO chatter and its import-time warnings; keep real warnings and errors."""
    if record.levelno < logging.WARNING:
        return False
    return not (record.levelno == logging.WARNING and record.filename in _IMPORT_NOISE_FILES)


def import_robosuite() -> Any:
    """Import robosuite lazily (it takes ~1 s) with its logging noise filtered, and register borl's own
    robosuite environments (Threading_D0) with it."""
    logging.getLogger("robosuite_logs").addFilter(_quiet_robosuite)  # adding the same filter twice is a no-op
    import robosuite

    import borl.envs.threading_env  # noqa: F401 (registers Threading_D0 by defining it)

    return robosuite


def robosuite_env_kwargs(spec: TaskSpec) -> dict[str, Any]:
    """The keyword arguments borl passes to robosuite.make (also recorded in robomimic files' env_args)."""
    import_robosuite()
    from robosuite.controllers import load_composite_controller_config

    return {
        "robots": "Panda",
        "controller_configs": load_composite_controller_config(robot="Panda"),
        "has_renderer": False,
        "has_offscreen_renderer": False,
        "use_camera_obs": False,
        "use_object_obs": True,
        "control_freq": 20,
        "horizon": spec.horizon,
        "ignore_done": True,
        "hard_reset": False,
    }


def _reseed_sampler(sampler: Any, rng: np.random.Generator) -> None:
    """Point a placement sampler (and a composite sampler's children) at rng."""
    if sampler is None:
        return
    sampler.rng = rng
    for child in getattr(sampler, "samplers", {}).values():
        _reseed_sampler(child, rng)


class RobosuiteEnv:
    """One robosuite environment (Panda, OSC_POSE delta control at 20 Hz) implementing TaskEnv.

    Reward is 1.0 on the step where the task first succeeds and the episode terminates there
    (robomimic's terminate-on-success evaluation); otherwise it is truncated at spec.horizon steps.
    """

    def __init__(self, spec: TaskSpec) -> None:
        robosuite = import_robosuite()
        self.spec = spec
        self.env_kwargs = robosuite_env_kwargs(spec)
        self.raw = robosuite.make(spec.env_name, seed=_CONSTRUCTION_SEED, **self.env_kwargs)
        self._cameras = FrameRenderer(hidden_groups=(0,), plain=True) if spec.cameras else None
        self.episode_steps = 0
        # robosuite's observation dict; None after a fast step until `observation_dict` asks for it.
        self._obs_dict: dict[str, np.ndarray] | None = {}
        self._keys = tuple(_ROBOSUITE_KEY.get(key, key) for key, _ in spec.obs_keys)
        self._done = True
        self._frames = FrameRenderer(hidden_groups=(0,))
        self._fast = None
        self._forwarded = False  # whether the simulator is as the last step's forward pass left it
        if spec.fast_controller:
            from borl.envs.fast_osc import FastOSC  # imports robosuite and numba: only when used

            self._fast = FastOSC(self.raw)

    def reset(self, seed: int) -> np.ndarray:
        """Start an episode whose initial state and dynamics depend only on seed."""
        rng = np.random.default_rng(seed)
        self.raw.rng = rng  # used by robot.reset (joint noise) and the object placement
        _reseed_sampler(getattr(self.raw, "placement_initializer", None), rng)
        self.raw.reset()
        # The observation reset() returns can predate its own last changes: PickPlaceCan and
        # NutAssemblySquare enable their one object's sensors during the reset, after which reset()'s
        # observation still holds zeros for the object relative to the gripper. Recompute it.
        self._obs_dict = self.raw._get_observations(force_update=True)
        self.episode_steps = 0
        self._done = False
        self._forwarded = False
        return self._flat(self._obs_dict)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply one action (clipped to [-1, 1]); reward 1.0 and terminated on success."""
        if self._done:
            raise BorlError("step() called on a finished episode; call reset(seed) first")
        action = checked_action(self.spec, action)
        # robosuite's step returns observables sampled on a timer that can fire a substep or two early,
        # and after its last substep positions lag the integrated state (no forward pass): together about
        # 1 mm. Recomputing makes each observation (and the success check) a function of the current state,
        # exactly as in robomimic's datasets, which regenerate observations from states.
        if self._fast is not None:
            # After the previous step's forward pass nothing has moved the simulator (pictures render
            # through MuJoCo's visualiser, which is given the data: their tasks keep mj_step1).
            self._fast.step(action, forwarded=self._forwarded and self._cameras is None)
            self.raw.sim.forward()
            self._forwarded = True
            # Only the observables of the flat keys; robosuite's whole dict when an expert asks for it.
            observed = self._fast.observe(self._keys)
            self._obs_dict = None
        else:
            self.raw.step(action)
            self.raw.sim.forward()
            observed = self._obs_dict = self.raw._get_observations(force_update=True)
        self.episode_steps += 1
        success = self.is_success()
        terminated = success
        truncated = not terminated and self.episode_steps >= self.spec.horizon
        self._done = terminated or truncated
        return self._flat(observed), float(success), terminated, truncated, {"success": success}

    def load_model_xml(self, xml: str) -> None:
        """Rebuild the scene from a recorded MJCF (a robosuite demo's model_file; asset paths are remapped
        to this robosuite install), so replayed states see the recorded objects' exact sizes."""
        self.raw.reset_from_xml_string(xml)
        self._done = True
        self._forwarded = False

    def set_state(self, state: np.ndarray) -> np.ndarray:
        """Put the simulator in a flattened state (as robomimic's reset_to does) and return its observation.

        The episode continues from there: step() may be called next.
        """
        self.raw.sim.set_state_from_flattened(np.asarray(state, dtype=np.float64))
        self.raw.sim.forward()
        self._obs_dict = self.raw._get_observations(force_update=True)
        self._done = False
        self._forwarded = False
        return self._flat(self._obs_dict)

    def is_success(self) -> bool:
        """Whether the task's success condition holds in the current state."""
        return bool(self.raw._check_success())

    def observation_dict(self) -> dict[str, np.ndarray]:
        """robosuite's latest per-key observations (all keys, including privileged object poses)."""
        if self._obs_dict is None:
            self._obs_dict = self._fast.observation_dict()
        return self._obs_dict

    def sim_state(self) -> np.ndarray:
        """The simulator's flattened state (robomimic's "states" row)."""
        return np.asarray(self.raw.sim.get_state().flatten())

    def render_state(self, state: np.ndarray, size: int) -> np.ndarray:
        """An RGB frame (size, size, 3) uint8 of a flattened simulator state from robomimic's
        `agentview` camera; the episode in progress, if any, must be reset afterwards."""
        self.observation_dict()  # the episode's last observation, before the state changes
        self.raw.sim.set_state_from_flattened(np.asarray(state, dtype=np.float64))
        self.raw.sim.forward()
        self._done = True
        self._forwarded = False
        return self._frames.render(self.raw.sim.model._model, self.raw.sim.data._data, "agentview", size)

    def pictures(self) -> list[np.ndarray]:
        """The current state seen by each of the spec's cameras: (image_size, image_size, 3) uint8 each."""
        model, data, size = self.raw.sim.model._model, self.raw.sim.data._data, self.spec.image_size
        return [self._cameras.render(model, data, camera, size) for camera in self.spec.cameras]

    def close(self) -> None:
        self._frames.close()
        if self._cameras is not None:
            self._cameras.close()
        self.raw.close()

    def _flat(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The low-dim keys, then (an image task) the cameras' pictures: the packed layout of
        borl/data/observations.py."""
        flat = np.concatenate(
            [np.asarray(obs[_ROBOSUITE_KEY.get(key, key)], dtype=np.float32) for key, _ in self.spec.obs_keys]
        )
        if self._cameras is None:
            return flat
        return np.concatenate([flat, *(p.reshape(-1).astype(np.float32) for p in self.pictures())])
