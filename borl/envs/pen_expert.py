"""A pen "expert" that plans on the simulator itself: MPPI (model-predictive path integral control) over
short action sequences, each candidate rolled out from the current MuJoCo state with mujoco.rollout.

A prototype: learning a pen expert with SAC was too slow on this machine (FACTS.md), while the
simulator runs about 3,300 pen steps/s, enough to try tens of action sequences per step. It acts from
privileged state (the exact simulator state), as the robosuite experts do.

Each step: sample `samples` sequences of `horizon` actions around the current plan (Gaussian noise
drawn at a few knots and interpolated in time, so sequences are smooth), roll each out, score it with
gymnasium-robotics' dense pen reward summed over the sequence, move the plan to the softmax-weighted
mean of the sequences, act with its first action and shift the plan by one step.

Measured with the defaults on 5 episodes (seeds 0-4, one core shared with other work): D4RL success in
2 of 5 (after 48 and 31 steps); the other 3 dropped the pen (from about step 30, falling for 20 steps),
one after holding the goal 8 steps. 0.15-0.22 s per step (960 simulated steps), 6-16 s per episode
(`python scripts/pen_planner.py 0 1 2 3 4` runs the same loop).
That is below the 80% a demonstrator needs, so `borl demos pen` does not use it yet. The 20-step
horizon sees a slow drop too late and the reward only penalises a pen already below 7.5 cm: a cost on
the pen's height or speed, and a longer horizon, are the next things to try.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from mujoco import rollout

from borl.envs.pen import GOAL_DISTANCE, GOAL_ORIENTATION, PenEnv

_STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS
# The pen body's joints: three slides, then three hinges about the body's x, y, z axes (adroit_pen.xml).
_PEN_SLIDES, _PEN_HINGES = slice(24, 27), slice(27, 30)
# gymnasium-robotics' pen reward: near-goal bonuses, and the penalty for a pen below this height.
_DROP_HEIGHT = 0.075


@dataclass(frozen=True)
class PlannerConfig:
    """MPPI's sizes: candidates per step, their length in env steps, noise and softmax temperature.

    temperature is relative to the spread of the candidates' returns (1 would weigh the best and the
    worst by e against 1).
    """

    samples: int = 48
    horizon: int = 20
    knots: int = 5
    sigma: float = 0.3
    temperature: float = 0.1


class PenPlanner:
    """MPPI on the pen environment's own MuJoCo model and state; act() ignores the observation.

    noise: std of Gaussian noise added to each action it returns (for diverse demonstrations).
    """

    def __init__(
        self, env: PenEnv, rng: np.random.Generator, noise: float, config: PlannerConfig | None = None
    ) -> None:
        self.env = env
        self.rng = rng
        self.noise = noise
        self.config = config or PlannerConfig()
        raw = env.raw
        self.model = raw.model
        self.scratch = mujoco.MjData(self.model)
        self.substeps = raw.frame_skip
        self.act_mean, self.act_rng = raw.act_mean, raw.act_rng
        self.plan = np.zeros((self.config.horizon, self.model.nu))
        self.state = np.empty(mujoco.mj_stateSize(self.model, _STATE))
        self.goal_pos = raw.data.site_xpos[raw.eps_ball_site_id].copy()
        body = raw.obj_body_id
        self.pen_origin = self.model.body_pos[body].copy()
        self.pen_frame = _quat_to_mat(self.model.body_quat[body])

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The first action of the refined plan (plus noise); the plan is shifted for the next step."""
        c = self.config
        raw = self.env.raw
        target = raw.data.site_xpos[raw.tar_t_site_id] - raw.data.site_xpos[raw.tar_b_site_id]
        target = target / np.linalg.norm(target)
        mujoco.mj_getState(self.model, raw.data, self.state, _STATE)

        candidates = np.clip(self.plan + self._smooth_noise(), -1.0, 1.0)
        candidates[0] = self.plan  # the current plan competes too
        controls = np.repeat(self.act_mean + candidates * self.act_rng, self.substeps, axis=1)
        states, _ = rollout.rollout(self.model, self.scratch, self.state, controls)
        qpos = states[:, self.substeps - 1 :: self.substeps, 1 : 1 + self.model.nq]
        returns = self._rewards(qpos, target).sum(axis=1)

        spread = returns.max() - returns.min()
        weights = np.exp((returns - returns.max()) / (c.temperature * spread + 1e-9))
        self.plan = np.einsum("k,khu->hu", weights / weights.sum(), candidates)
        action = self.plan[0].copy()
        self.plan = np.concatenate([self.plan[1:], self.plan[-1:]])
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def _smooth_noise(self) -> np.ndarray:
        """(samples, horizon, nu) Gaussian noise drawn at `knots` times and linearly interpolated."""
        c = self.config
        knots = self.rng.normal(0.0, c.sigma, size=(c.samples, c.knots, self.model.nu))
        at = np.linspace(0, c.knots - 1, c.horizon)
        low = np.floor(at).astype(int)
        high = np.minimum(low + 1, c.knots - 1)
        frac = (at - low)[None, :, None]
        return (1 - frac) * knots[:, low] + frac * knots[:, high]

    def pen_pose(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pen's position and long axis (unit, bottom to top) in the world from qpos rows (..., 30)."""
        pos = self.pen_origin + qpos[..., _PEN_SLIDES] @ self.pen_frame.T
        return pos, _pen_axis(self.pen_frame, qpos[..., _PEN_HINGES])

    def _rewards(self, qpos: np.ndarray, target: np.ndarray) -> np.ndarray:
        """gymnasium-robotics' dense pen reward for each (sample, step) from the pen's joint positions."""
        pos, axis = self.pen_pose(qpos)
        distance = np.linalg.norm(pos - self.goal_pos, axis=-1)
        similarity = axis @ target
        near = distance < GOAL_DISTANCE
        reward = -distance + similarity
        reward += 10.0 * (near & (similarity > 0.9)) + 50.0 * (near & (similarity > GOAL_ORIENTATION))
        return reward - 5.0 * (pos[..., 2] < _DROP_HEIGHT)


def _quat_to_mat(quat: np.ndarray) -> np.ndarray:
    matrix = np.empty(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quat, dtype=np.float64))
    return matrix.reshape(3, 3)


def _pen_axis(frame: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """The pen's long axis in the world: the body's z axis (from object_bottom to object_top) turned by
    its x, y, z hinges in turn. The z hinge spins the pen about that axis and leaves it unchanged."""
    cx, sx = np.cos(angles[..., 0]), np.sin(angles[..., 0])
    cy, sy = np.cos(angles[..., 1]), np.sin(angles[..., 1])
    # Rx @ Ry @ Rz applied to (0, 0, 1) is Rx @ (sy, 0, cy).
    local = np.stack([sy, -sx * cy, cx * cy], axis=-1)
    return local @ frame.T
