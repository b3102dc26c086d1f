"""A simulated robot over any borl task (`sim:lift`, ...): the tests' robot and the worked example of
the Robot interface (docs/robot.md)."""

from __future__ import annotations

import numpy as np

from borl.envs.base import TaskEnv, checked_action
from borl.envs.registry import get_task
from borl.errors import BorlError
from borl.robot.base import Robot, RobotSpec

# robosuite's control rate as borl builds its tasks (control_freq 20).
SIM_CONTROL_HZ = 20.0


class SimRobot(Robot):
    """A borl task's environment behind the Robot interface; each reset draws the next start state
    from `seed`, and success is the simulator's own flag."""

    def __init__(self, task: str, seed: int = 0, horizon: int | None = None) -> None:
        self.task = get_task(task)
        spec = self.task.spec
        horizon = horizon or spec.horizon
        self.spec = RobotSpec.of_task(spec, f"sim:{task}", spec.act_dim, SIM_CONTROL_HZ, horizon)
        self.seed = seed
        self.episodes = 0
        self.env: TaskEnv | None = None
        self._obs: np.ndarray | None = None
        self._over = False
        self._success = False

    def connect(self) -> None:
        if self.env is None:
            self.env = self.task.make_env(horizon=self.spec.horizon)

    def reset(self) -> dict[str, np.ndarray]:
        self.connect()
        self._obs = self.env.reset(self.seed + self.episodes)
        self.episodes += 1
        self._over = self._success = False
        return self.spec.split(self._obs)

    def observe(self) -> dict[str, np.ndarray]:
        if self._obs is None:
            raise BorlError("observe before reset")
        return self.spec.split(self._obs)

    def send_action(self, action: np.ndarray) -> None:
        if self._obs is None:
            raise BorlError("send_action before reset")
        obs, _, terminated, truncated, info = self.env.step(checked_action(self.task.spec, action))
        self._obs = obs
        self._over = bool(terminated or truncated)
        self._success = self._success or bool(info["success"])

    def episode_over(self) -> bool:
        return self._over

    def success(self) -> bool:
        return self._success

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


def make_robot(name: str, seed: int = 0, horizon: int | None = None) -> Robot:
    """A robot by name: `sim:TASK` is the simulated robot; a user's own arm is passed as an object."""
    kind, _, task = name.partition(":")
    if kind != "sim" or not task:
        raise BorlError(f"unknown robot '{name}' (known: sim:TASK, e.g. sim:lift)")
    return SimRobot(task, seed=seed, horizon=horizon)
