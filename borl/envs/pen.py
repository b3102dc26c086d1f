"""Adroit pen (gymnasium-robotics AdroitHandPen-v1) behind borl's TaskEnv interface, with D4RL's
success rule.

D4RL counts a pen episode a success when the pen is at the target pose (gymnasium's per-step
info["success"]: position error < 0.075 and orientation dot product > 0.95) on MORE than 20 of its
steps, in total and not necessarily in a row. borl turns that into its sparse convention: reward 1.0
and terminated on the step where the 21st such step is reached, 0.0 before; otherwise the episode is
truncated at the horizon (100 steps, D4RL's). Terminating there is exact for the success metric, since
the count can only grow, and it gives the critic a true terminal success as the robosuite tasks do.
The count is not in the 45-dim observation, so the reward is not Markov in it: the critic learns the
expected value over how long the pen has already been held, which is what a policy acting on
observations alone can use.

A dropped pen does not end the episode (gymnasium-robotics never terminates; D4RL's v0 env did): it
is simply a failure cut off by time, like every other one.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import mujoco
import numpy as np

from borl.envs.base import TaskSpec, checked_action
from borl.envs.rendering import FrameRenderer
from borl.errors import BorlError

# D4RL: success means the goal held on more than this many steps of the episode.
SUCCESS_STEPS = 20

# The per-step goal test of AdroitHandPen-v1 (gymnasium-robotics adroit_pen.py).
GOAL_DISTANCE = 0.075
GOAL_ORIENTATION = 0.95


# MuJoCo's whole integration state (solver warm start and controls included): set back into an MjData,
# it makes the next step bitwise the one the environment would take. pen's experts simulate from it.
INTEGRATION_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


def integration_state(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """The integration state of `data` (see INTEGRATION_STATE), as a flat array."""
    state = np.empty(mujoco.mj_stateSize(model, INTEGRATION_STATE))
    mujoco.mj_getState(model, data, state, INTEGRATION_STATE)
    return state


def gymnasium_env(env_name: str, horizon: int) -> Any:
    """gymnasium.make(env_name, max_episode_steps=horizon) with gymnasium-robotics registered.

    Importing gymnasium_robotics prints a notice about other Adroit tasks' rewards to stderr; it is
    swallowed (import errors still raise).
    """
    import gymnasium

    with contextlib.redirect_stderr(io.StringIO()):
        import gymnasium_robotics

    gymnasium.register_envs(gymnasium_robotics)
    return gymnasium.make(env_name, max_episode_steps=horizon, disable_env_checker=True)


def success_step(goal_achieved: np.ndarray) -> int | None:
    """The index of the step at which D4RL's rule is first met (the goal held on more than 20 steps
    so far), or None if it never is."""
    counts = np.cumsum(np.asarray(goal_achieved, dtype=bool))
    reached = np.flatnonzero(counts > SUCCESS_STEPS)
    return int(reached[0]) if len(reached) else None


def goal_achieved_from_obs(observations: np.ndarray) -> np.ndarray:
    """gymnasium's per-step success flag recomputed from 45-dim pen observations (one per row).

    The observation holds the pen's and target's orientation vectors (33:36, 36:39) and the pen's
    position relative to the target (39:42), which is all the goal test reads.
    """
    obs = np.asarray(observations, dtype=np.float64)
    distance = np.linalg.norm(obs[:, 39:42], axis=1)
    similarity = np.einsum("ij,ij->i", obs[:, 33:36], obs[:, 36:39])
    return (distance < GOAL_DISTANCE) & (similarity > GOAL_ORIENTATION)


class PenEnv:
    """AdroitHandPen-v1 implementing TaskEnv: float32 45-dim observations, 24-dim actions in [-1, 1],
    resets that depend only on the seed (the hand and pen always start alike; the seed draws the
    target's two Euler angles), and D4RL's success rule as a sparse terminal reward (module docstring).

    info carries "success" (the episode's D4RL success so far) and "goal_achieved" (gymnasium's
    per-step flag).
    """

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.gym = gymnasium_env(spec.env_name, spec.horizon)
        self.raw = self.gym.unwrapped
        self.episode_steps = 0
        self.goal_steps = 0
        self._done = True
        self._frames = FrameRenderer()

    def reset(self, seed: int) -> np.ndarray:
        """Start an episode whose target orientation depends only on seed."""
        obs, _ = self.gym.reset(seed=int(seed))
        self.episode_steps = 0
        self.goal_steps = 0
        self._done = False
        return obs.astype(np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply one action (clipped to [-1, 1]); reward 1.0 and terminated when D4RL's rule is met."""
        if self._done:
            raise BorlError("step() called on a finished episode; call reset(seed) first")
        action = checked_action(self.spec, action)
        obs, _, _, _, info = self.gym.step(action)
        self.episode_steps += 1
        goal = bool(info["success"])
        self.goal_steps += goal
        success = self.goal_steps > SUCCESS_STEPS
        terminated = success
        truncated = not terminated and self.episode_steps >= self.spec.horizon
        self._done = terminated or truncated
        info = {"success": success, "goal_achieved": goal}
        return obs.astype(np.float32), float(success), terminated, truncated, info

    def sim_state(self) -> np.ndarray:
        """MuJoCo qpos (30), qvel (30) and the target's quaternion (4): D4RL's env state, flattened."""
        state = self.raw.get_env_state()
        return np.concatenate([state["qpos"], state["qvel"], state["desired_orien"]])

    def render_state(self, state: np.ndarray, size: int) -> np.ndarray:
        """An RGB frame (size, size, 3) uint8 of a `sim_state` from the scene's fixed camera; the
        episode in progress, if any, must be reset afterwards."""
        qpos, qvel, orientation = np.split(np.asarray(state, dtype=np.float64), [30, 60])
        self.raw.set_env_state({"qpos": qpos, "qvel": qvel, "desired_orien": orientation})
        self._done = True
        return self._frames.render(self.raw.model, self.raw.data, "fixed", size)

    def close(self) -> None:
        self._frames.close()
        self.gym.close()
