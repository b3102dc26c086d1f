"""The tasks borl knows: each is a TaskSpec plus how to build its environment and scripted expert.

Adding a task means adding a TaskSpec and an expert to _TASKS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from borl.envs.base import Expert, TaskEnv, TaskSpec
from borl.envs.experts import CanExpert, LiftExpert, SquareExpert, StackExpert
from borl.envs.pen import PenEnv
from borl.envs.pen_policy import PenSearchExpert
from borl.envs.robosuite_env import RobosuiteEnv
from borl.envs.threading_expert import ThreadingExpert
from borl.errors import BorlError


@dataclass(frozen=True)
class Task:
    """A task's spec with factories for its environment and its scripted expert."""

    spec: TaskSpec
    env_factory: Callable[[TaskSpec], TaskEnv]
    expert_factory: Callable[[TaskEnv, np.random.Generator, float], Expert]

    @property
    def name(self) -> str:
        return self.spec.name

    def make_env(self, horizon: int | None = None, fast_controller: bool | None = None) -> TaskEnv:
        """A fresh environment; horizon overrides the spec's episode length (e.g. a shorter evaluation),
        fast_controller whether a robosuite task steps through the compiled controller."""
        if horizon is not None and horizon < 1:
            raise BorlError(f"horizon must be at least 1, got {horizon}")
        spec = self.spec if horizon is None else replace(self.spec, horizon=horizon)
        if fast_controller is not None:
            spec = replace(spec, fast_controller=fast_controller)
        return self.env_factory(spec)

    def make_expert(self, env: TaskEnv, rng: np.random.Generator, noise: float) -> Expert:
        """The scripted expert acting in env, adding Gaussian noise of std `noise` to its arm actions."""
        return self.expert_factory(env, rng, noise)


def _robosuite_task(
    name: str,
    env_name: str,
    description: str,
    object_size: int,
    default_demos: int,
    expert: Callable[[TaskEnv, np.random.Generator, float], Expert],
) -> Task:
    """A robosuite task as the study ran them: Panda under OSC_POSE delta control (7-dim actions),
    robomimic's low-dim keys (the task's `object` state last), horizon 400, demo noise 0.15."""
    return Task(
        spec=TaskSpec(
            name=name,
            description=f"{description} (Panda, OSC_POSE delta)",
            obs_keys=(
                ("robot0_eef_pos", 3),
                ("robot0_eef_quat", 4),
                ("robot0_gripper_qpos", 2),
                ("object", object_size),
            ),
            act_dim=7,
            horizon=400,
            default_demos=default_demos,
            demo_noise=0.15,
            env_name=env_name,
            fast_controller=True,
        ),
        env_factory=RobosuiteEnv,
        expert_factory=expert,
    )


_TASKS: tuple[Task, ...] = (
    # D0 sizes put pi0 (as deployed with best-of-32, and the policy alone) at 30-65% success: measured
    # over 50 evaluation episodes, seed 0 (docs/tasks.md, docs/results/d0_sizes), with 3k policy steps
    # in the comments below. With today's 10k, as deployed: lift 62%, can 56%, square 28-36% (30 demos,
    # seeds 0 and 1), stack 48%, threading 36% (15 demos). Lift: 3 demos 46% at 3k.
    _robosuite_task("lift", "Lift", "robosuite Lift: pick up the red cube", 10, 3, LiftExpert),
    # Lift seen through robomimic's two cameras plus proprioception (docs/images.md); D0's size is
    # lift's, not yet measured for pictures.
    Task(
        spec=replace(
            _robosuite_task("lift", "Lift", "", 10, 3, LiftExpert).spec,
            name="lift-image",
            description="robosuite Lift from pictures: agentview and wrist RGB 84x84 + the arm's "
            "proprioception (Panda, OSC_POSE delta; the expert acts on the simulator's state)",
            obs_keys=(("robot0_eef_pos", 3), ("robot0_eef_quat", 4), ("robot0_gripper_qpos", 2)),
            cameras=("agentview", "robot0_eye_in_hand"),
        ),
        env_factory=RobosuiteEnv,
        expert_factory=LiftExpert,
    ),
    # can: 5 demos 30% (alone 50%), 7: 40% (40%), 10: 74% (74%)
    _robosuite_task(
        "can", "PickPlaceCan", "robosuite PickPlaceCan: put the can in its bin", 14, 7, CanExpert
    ),
    # square at 10k: 20 demos 22% (alone 34%); 30: 28%, 36% (66%, 46%; seeds 0, 1); 40: 30%, 28% (74%, 48%)
    _robosuite_task(
        "square",
        "NutAssemblySquare",
        "robosuite NutAssemblySquare: fit the square nut on its peg",
        14,
        30,
        SquareExpert,
    ),
    # MimicGen's Stack_D0 is robosuite's Stack unchanged: cubes anywhere in [-0.08, 0.08]^2, any yaw.
    # 10 demos 34% (alone 16%), 15: 56% (52%), 20: 66% (74%)
    _robosuite_task(
        "stack", "Stack", "robosuite Stack (MimicGen Stack_D0): red cube on green cube", 23, 15, StackExpert
    ),
    # threading: 10 demos 30% (alone 38%), 20: 38% (86%); at 10k policy steps 10: 20% (28%), 15: 36% (34%)
    _robosuite_task(
        "threading",
        "Threading_D0",
        "Threading (MimicGen Threading_D0): push the needle through the tripod's ring",
        28,
        15,
        ThreadingExpert,
    ),
    Task(
        spec=TaskSpec(
            name="pen",
            description="Adroit pen (gymnasium-robotics AdroitHandPen-v1): turn the pen to the target pose",
            obs_keys=(
                ("hand_qpos", 24),
                ("pen_pos", 3),
                ("pen_vel", 6),
                ("pen_orientation", 3),
                ("target_orientation", 3),
                ("pen_to_target_pos", 3),
                ("pen_to_target_orientation", 3),
            ),
            act_dim=24,
            horizon=100,  # D4RL's
            # D4RL's pen-human size; pi0 from it in the band (docs/tasks.md)
            default_demos=25,
            # The feedback policy's noise, which the search keeps draws of: demos at 0.1 make pi0
            # 40% / 42% and 44% / 60% (as deployed / alone) with seeds 0 and 1
            demo_noise=0.1,
            env_name="AdroitHandPen-v1",
        ),
        env_factory=PenEnv,
        expert_factory=PenSearchExpert,
    ),
)


def list_tasks() -> list[Task]:
    """All registered tasks, in registration order."""
    return list(_TASKS)


def get_task(name: str) -> Task:
    """The task called name; raises BorlError naming the known tasks otherwise."""
    for task in _TASKS:
        if task.spec.name == name:
            return task
    known = ", ".join(task.spec.name for task in _TASKS)
    raise BorlError(f"unknown task '{name}' (known: {known})")
