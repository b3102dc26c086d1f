"""pen's expert: the network of a feedback policy (a small MLP from the 45-dim observation to the mean
of 24 joint targets, with its observation normaliser and a learned exploration std; trained by
scripts/pen_rl.py), the policy acting alone, and the default expert that searches over its noise."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import torch
from torch import nn

from borl.envs.pen import INTEGRATION_STATE, SUCCESS_STEPS, PenEnv, gymnasium_env, integration_state
from borl.errors import BorlError


class PenPolicyNet(nn.Module):
    """Normalised observation -> tanh MLP -> action mean in [-1, 1]; `log_std` is the exploration noise
    PPO trained with (state-independent, per joint)."""

    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.register_buffer("obs_mean", torch.zeros(45))
        self.register_buffer("obs_std", torch.ones(45))
        self.net = nn.Sequential(
            nn.Linear(45, width),
            nn.Tanh(),
            nn.Linear(width, width),
            nn.Tanh(),
            nn.Linear(width, 24),
            nn.Tanh(),
        )
        self.log_std = nn.Parameter(torch.zeros(24))

    def fit_normaliser(self, observations: np.ndarray) -> None:
        """Set the normaliser to the observations' mean and std (std floored so constants stay finite)."""
        self.obs_mean.copy_(torch.as_tensor(observations.mean(0)))
        self.obs_std.copy_(torch.as_tensor(observations.std(0)).clamp_min(1e-2))

    def normalise(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs - self.obs_mean) / self.obs_std).clamp(-10, 10)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalise(obs))


WEIGHTS = Path(__file__).with_name("pen_expert.pt")


class PenPolicyExpert:
    """The feedback policy trained by scripts/pen_rl.py (weights shipped in the package) acting alone,
    with its mean action plus Gaussian noise of std `noise` from rng on every joint.

    Unlike the planner (borl/envs/pen_expert.py) it is a smooth function of the observation that PPO
    trained under its own exploration noise, so its demonstrations can be imitated (docs/tasks.md).
    env is unused (experts share one factory signature): the policy acts on the observation alone.
    """

    def __init__(self, env: object, rng: np.random.Generator, noise: float, weights: Path = WEIGHTS) -> None:
        if not weights.is_file():
            raise BorlError(f"pen expert weights not found at {weights} (scripts/pen_rl.py trains them)")
        self.rng = rng
        self.noise = noise
        self.net = PenPolicyNet()
        self.net.load_state_dict(torch.load(weights, weights_only=True))
        self.net.eval()

    def act(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            mean = self.net(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
        noisy = mean + self.noise * self.rng.standard_normal(mean.shape)
        return np.clip(noisy, -1.0, 1.0).astype(np.float32)


# Noise draws the default expert may simulate per episode: 183/200 successes at noise 0.1 (4: 167, 16: 187).
SEARCH_ATTEMPTS = 8


class PenSearchExpert:
    """pen's default expert: the feedback policy with a search over its own noise on the simulator.

    The first act() of an episode simulates, on a private copy of the environment set to its exact
    state, up to `attempts` episodes of the policy (mean action plus noise of std `noise`, as
    PenPolicyExpert acts; one episode without noise, where every draw is the same) and keeps the
    first that meets D4RL's rule, or else the one whose pen was at the goal longest; act() then
    replays its actions. The simulator is deterministic, so the replay reproduces the simulated
    episode exactly; should the environment's state ever differ from the predicted one, the search
    runs again from it. Every action is one the policy itself could have taken with its noise, so
    demonstrations stay as imitable as the plain policy's: the search only picks which noise draw to
    keep, per target (docs/tasks.md).
    """

    def __init__(
        self,
        env: PenEnv,
        rng: np.random.Generator,
        noise: float,
        attempts: int = SEARCH_ATTEMPTS,
        weights: Path = WEIGHTS,
    ) -> None:
        if attempts < 1:
            raise BorlError(f"the pen search needs at least 1 attempt, got {attempts}")
        self.env = env
        self.policy = PenPolicyExpert(env, rng, noise, weights)
        self.attempts = attempts if noise > 0 else 1
        self.copy = gymnasium_env(env.spec.env_name, env.spec.horizon).unwrapped
        self.actions: list[np.ndarray] = []
        self.predicted: list[np.ndarray] = []
        self.planned_from = -1
        self.found = False

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The next action of the kept episode; searches first when the episode (or the state) is new."""
        offset = self.env.episode_steps - self.planned_from
        if not (0 <= offset < len(self.actions)) or not np.array_equal(
            integration_state(self.env.raw.model, self.env.raw.data), self.predicted[offset]
        ):
            self._search(obs)
            offset = 0
        return self.actions[offset]

    def _search(self, obs: np.ndarray) -> None:
        """Simulate up to `attempts` episodes from the environment's state and keep the best."""
        raw, copy = self.env.raw, self.copy
        copy.model.body_quat[copy.target_obj_body_id] = raw.model.body_quat[raw.target_obj_body_id]
        copy.pen_length, copy.tar_length = raw.pen_length, raw.tar_length
        start = integration_state(raw.model, raw.data)
        best: tuple[int, list[np.ndarray], list[np.ndarray]] | None = None
        for _ in range(self.attempts):
            attempt = self._simulate(start, obs)
            if best is None or attempt[0] > best[0]:
                best = attempt
            if best[0] > SUCCESS_STEPS:
                break
        goals, self.actions, self.predicted = best
        self.planned_from = self.env.episode_steps
        self.found = goals > SUCCESS_STEPS

    def _simulate(self, start: np.ndarray, obs: np.ndarray) -> tuple[int, list[np.ndarray], list[np.ndarray]]:
        """One episode of the noisy policy on the private copy (its target already the environment's),
        from state `start` (where the environment observed `obs`) to success or the horizon: its
        goal-step count, its actions and the state before each."""
        copy = self.copy
        mujoco.mj_setState(copy.model, copy.data, start, INTEGRATION_STATE)
        goals = self.env.goal_steps
        actions, states = [], []
        for _ in range(self.env.spec.horizon - self.env.episode_steps):
            states.append(integration_state(copy.model, copy.data))
            actions.append(self.policy.act(obs))
            raw_obs, _, _, _, info = copy.step(actions[-1])
            obs = raw_obs.astype(np.float32)
            goals += bool(info["success"])
            if goals > SUCCESS_STEPS:
                break
        return goals, actions, states
