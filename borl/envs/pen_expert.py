"""A pen expert that plans on the simulator itself: predictive sampling (MPPI's sampling with the best
sequence kept) over short action sequences rolled out with mujoco.rollout, inside a search over whole
episodes that backs up when the pen drops.

It succeeds often, but its demonstrations are precise open-loop manoeuvres that a policy cannot
imitate (docs/tasks.md), so it is no longer pen's default expert: its demonstrations start the
training of the feedback policy that the default expert searches with (scripts/pen_rl.py,
borl/envs/pen_policy.py). It acts from privileged state (the exact simulator state), as the robosuite
experts do.

Inner step (receding horizon): sample `samples` sequences of `horizon` actions around the current
plan (Gaussian noise at a few knots, interpolated in time, zero at the first step), roll each out from
the state, score it with gymnasium-robotics' dense pen reward plus a cost on the pen's height below its
start and on its speed, and keep the best sequence (the previous plan competes too); act with its first
action and shift it. Averaging the sequences (MPPI proper) lost the pen more often: the mean of several
safe finger motions is not itself safe, while the best sequence was simulated exactly. With noise on
the first step too, the action taken jumped by about `sigma` every step (mean |a_t - a_{t-1}| 0.232 per
joint, successes of seeds 0-9, no noise); unperturbed there, it changes only along the plan's ramps
(0.146, successes of seeds 0-19). Measured on seeds 0-9 (budget 150), the other ways to smooth it cost
more success: a low-pass filter on the executed actions that the search simulates (alpha 0.3: 4/10,
0.107; with sigma 0.5: 7/10, 0.136), sigma 0.15 (4/10, 0.140), a cost on action change (4/10, 0.155),
against 9/10 before and 7/10 for the unperturbed first step, which a budget of 300 brings to 9/10.

Outer search: the first act() of an episode simulates the whole episode on a private copy of the
state, demo noise included. When the pen leaves the goal region (more than `drop_distance` from it) the
search restores the state `backtrack` steps earlier and plans on with fresh samples; when the D4RL
rule can no longer be met in the steps left, it restarts the episode. It stops at the first success or
after `budget` planning steps (then holding still, with zero actions, to the end), and act() replays
the found actions. The simulator is deterministic, so the replay reproduces the search's trajectory
exactly; should the environment's state differ from the predicted one, the search runs again from it.

Measured with the defaults (2-core machine shared with other work, the planner's process niced):
D4RL success in 17 of 20 episodes (seeds 0-19, no noise; `python scripts/pen_planner.py $(seq 0 19)`),
11.7 CPU s per episode on average; the three failures spent the whole budget. 25 demonstrations
(seed 0, no noise, as scripts/pen_rl.py makes them) took 30 attempts, its actions changing by 0.147 per
joint and step, and 34 attempts with noise 0.05 (0.159). Smoother demonstrations did not make them
imitable: pi0 from those 25 succeeded 8% as deployed and 6% alone (50 episodes; noise 0.05: 6%, 2%),
about as before (0%, 4% from the earlier expert at noise 0.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from mujoco import rollout

from borl.envs.pen import (
    GOAL_DISTANCE,
    GOAL_ORIENTATION,
    INTEGRATION_STATE,
    SUCCESS_STEPS,
    PenEnv,
    integration_state,
)

# The search keeps whole integration states (INTEGRATION_STATE); mujoco.rollout takes the physical part.
_PHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS
# The pen body's joints: three slides, then three hinges about the body's x, y, z axes (adroit_pen.xml).
_PEN_SLIDES, _PEN_HINGES = slice(24, 27), slice(27, 30)
# gymnasium-robotics' pen reward: near-goal bonuses, and the penalty for a pen below this height.
_DROP_HEIGHT = 0.075


@dataclass(frozen=True)
class PlannerConfig:
    """Sizes of the inner sampling (candidates per step, their length in env steps, noise knots and
    std), the cost's weights, and the outer search's limits (see the module docstring)."""

    samples: int = 32
    horizon: int = 20
    knots: int = 5
    sigma: float = 0.3
    orientation_weight: float = 5.0
    height_weight: float = 50.0
    speed_weight: float = 2.0
    drop_distance: float = 0.1
    backtrack: int = 20
    budget: int = 300


class PenPlanner:
    """The planning pen expert (module docstring); act() ignores the observation and reads the simulator.

    noise: std of Gaussian noise added to each action it returns (for diverse demonstrations); the
    search simulates the noisy actions, so noise does not make it drop the pen.
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
        self.sim = mujoco.MjData(self.model)
        self.scratch = mujoco.MjData(self.model)
        self.substeps = raw.frame_skip
        self.act_mean, self.act_rng = raw.act_mean, raw.act_rng
        body = raw.obj_body_id
        self.pen_origin = self.model.body_pos[body].copy()
        self.pen_frame = _quat_to_mat(self.model.body_quat[body])
        self.physics = np.empty(mujoco.mj_stateSize(self.model, _PHYSICS))
        self.actions: list[np.ndarray] = []
        self.predicted: list[np.ndarray] = []
        self.planned_from = -1
        self.search_steps = 0
        self.found = False

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The next action of the searched episode; searches first when the episode (or the state) is new."""
        step = self.env.episode_steps
        offset = step - self.planned_from
        if not (0 <= offset < len(self.actions)) or not np.array_equal(
            integration_state(self.model, self.env.raw.data), self.predicted[offset]
        ):
            self._search(step)
            offset = 0
        return self.actions[offset]

    def _search(self, step: int) -> None:
        """Simulate the rest of the episode from the environment's state, backing up on drops."""
        c = self.config
        raw = self.env.raw
        self.goal_pos = raw.data.site_xpos[raw.eps_ball_site_id].copy()
        self.pen_length, self.target_length = raw.pen_length, raw.tar_length
        target = raw.data.site_xpos[raw.tar_t_site_id] - raw.data.site_xpos[raw.tar_b_site_id]
        self.target = target / np.linalg.norm(target)
        self.rest_height = self.pen_origin[2]
        steps_left = self.env.spec.horizon - step
        start = integration_state(self.model, raw.data)
        # Per simulated step: the state before it, the plan, and the goal steps so far.
        states, plans, goals = [start], [np.zeros((c.horizon, self.model.nu))], [self.env.goal_steps]
        actions: list[np.ndarray] = []
        budget = c.budget
        while len(actions) < steps_left and budget > 0 and goals[-1] <= SUCCESS_STEPS:
            budget -= 1
            t = len(actions)
            action, plan = self._plan_step(states[t], plans[t])
            state, goal, distance = self._simulate(states[t], action)
            actions.append(action)
            states.append(state)
            plans.append(plan)
            goals.append(goals[t] + goal)
            if distance > c.drop_distance:
                back = max(0, t + 1 - c.backtrack)
            elif goals[-1] + steps_left - len(actions) <= SUCCESS_STEPS:
                back = 0
            else:
                continue
            plans[back] = np.zeros_like(plans[back])
            del states[back + 1 :], plans[back + 1 :], goals[back + 1 :], actions[back:]
        while len(actions) < steps_left:  # out of budget: hold still (zero action) to the end
            actions.append(np.zeros(self.model.nu, dtype=np.float32))
            states.append(self._simulate(states[-1], actions[-1])[0])
        self.actions, self.predicted, self.planned_from = actions, states[:-1], step
        self.search_steps = c.budget - budget
        self.found = goals[-1] > SUCCESS_STEPS

    def _plan_step(self, state: np.ndarray, plan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The best of the sampled sequences from state: its first action (noise added, float32 as the
        environment records it) and the rest of it shifted to start the next step's plan."""
        candidates = np.clip(plan + self._smooth_noise(), -1.0, 1.0)
        candidates[0] = plan
        controls = np.repeat(self.act_mean + candidates * self.act_rng, self.substeps, axis=1)
        mujoco.mj_setState(self.model, self.sim, state, INTEGRATION_STATE)
        mujoco.mj_getState(self.model, self.sim, self.physics, _PHYSICS)
        states, _ = rollout.rollout(self.model, self.scratch, self.physics, controls)
        ends = states[:, self.substeps - 1 :: self.substeps]  # the state after each env step
        nq = self.model.nq
        qpos, pen_velocity = ends[..., 1 : 1 + nq], ends[..., 1 + nq + 24 : 1 + nq + 27]
        best = candidates[np.argmax(self._rewards(qpos, pen_velocity).sum(axis=1))]
        action = best[0]
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, size=action.shape)
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        return action, np.concatenate([best[1:], best[-1:]])

    def _simulate(self, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, bool, float]:
        """One environment step from state exactly as gymnasium-robotics takes it: the next state, the
        per-step goal flag and the pen's distance from the goal (both read as the environment reads them)."""
        mujoco.mj_setState(self.model, self.sim, state, INTEGRATION_STATE)
        self.sim.ctrl[:] = self.act_mean + np.clip(action, -1.0, 1.0) * self.act_rng
        mujoco.mj_step(self.model, self.sim, nstep=self.substeps)
        raw, data = self.env.raw, self.sim
        distance = float(np.linalg.norm(data.xpos[raw.obj_body_id] - self.goal_pos))
        pen = (data.site_xpos[raw.obj_t_site_id] - data.site_xpos[raw.obj_b_site_id]) / self.pen_length
        target = (data.site_xpos[raw.tar_t_site_id] - data.site_xpos[raw.tar_b_site_id]) / self.target_length
        goal = distance < GOAL_DISTANCE and float(pen @ target) > GOAL_ORIENTATION
        return integration_state(self.model, data), goal, distance

    def _smooth_noise(self) -> np.ndarray:
        """(samples, horizon, nu) Gaussian noise drawn at `knots` times and linearly interpolated, zero
        at the first: the action taken is the previous plan's, changed only by the ramp toward the next
        knot, so consecutive actions differ by a fraction of sigma where a perturbed first action would
        jump by about sigma every step (a smoother demonstration for the policy to imitate)."""
        c = self.config
        knots = self.rng.normal(0.0, c.sigma, size=(c.samples, c.knots, self.model.nu))
        knots[:, 0] = 0.0
        at = np.linspace(0, c.knots - 1, c.horizon)
        low = np.floor(at).astype(int)
        high = np.minimum(low + 1, c.knots - 1)
        frac = (at - low)[None, :, None]
        return (1 - frac) * knots[:, low] + frac * knots[:, high]

    def pen_pose(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pen's position and long axis (unit, bottom to top) in the world from qpos rows (..., 30)."""
        pos = self.pen_origin + qpos[..., _PEN_SLIDES] @ self.pen_frame.T
        return pos, _pen_axis(self.pen_frame, qpos[..., _PEN_HINGES])

    def _rewards(self, qpos: np.ndarray, pen_velocity: np.ndarray) -> np.ndarray:
        """Each (sample, step)'s score: gymnasium-robotics' dense pen reward with the orientation term
        weighted up, less the pen's height below its start and its speed (both foretell a drop that
        the reward alone sees only once the pen is down)."""
        c = self.config
        pos, axis = self.pen_pose(qpos)
        distance = np.linalg.norm(pos - self.goal_pos, axis=-1)
        similarity = axis @ self.target
        near = distance < GOAL_DISTANCE
        reward = -distance + c.orientation_weight * similarity
        reward += 10.0 * (near & (similarity > 0.9)) + 50.0 * (near & (similarity > GOAL_ORIENTATION))
        reward -= 5.0 * (pos[..., 2] < _DROP_HEIGHT)
        reward -= c.height_weight * np.maximum(0.0, self.rest_height - pos[..., 2])
        return reward - c.speed_weight * np.linalg.norm(pen_velocity, axis=-1)


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
