"""`borl drive`: the control loop. Each episode: the robot resets, the policy (server or in-process)
starts an episode, then at the control rate the robot's observation goes in and the action comes
out, until the robot says the episode is over or the horizon is reached; the success label ends it
and the recorder writes it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from borl.errors import BorlError
from borl.robot.base import Robot
from borl.robot.client import ActingPolicy
from borl.robot.recorder import EpisodeRecorder


@dataclass
class DriveReport:
    """What a drive did: successes per episode, and the control loop's timing."""

    successes: list[bool] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    periods_ms: list[float] = field(default_factory=list)
    late_steps: int = 0

    def summary(self) -> str:
        n = len(self.successes)
        periods = np.asarray(self.periods_ms) if self.periods_ms else np.zeros(1)
        return (
            f"{sum(self.successes)}/{n} episodes succeeded, {sum(self.steps)} steps; control period "
            f"median {np.median(periods):.1f} ms, p99 {np.percentile(periods, 99):.1f} ms; "
            f"{self.late_steps} steps late"
        )


def check_compatible(robot: Robot, spec: dict) -> None:
    """The robot's observation keys and action size are the agent's; a one-line BorlError if not."""
    theirs = [tuple(pair) for pair in spec["obs_keys"]]
    cameras = tuple(spec.get("cameras", ()))
    same_pictures = robot.spec.cameras == cameras and (
        not cameras or robot.spec.image_size == spec.get("image_size")
    )
    if list(robot.spec.obs_keys) != theirs or robot.spec.act_dim != spec["action_dim"] or not same_pictures:
        pictures = [f"{camera}_image" for camera in cameras]
        raise BorlError(
            f"robot {robot.spec.name} (obs {robot.spec.key_names()}, {robot.spec.act_dim} actions) does "
            f"not match the agent of task {spec['task']} ({', '.join([k for k, _ in theirs] + pictures)}, "
            f"{spec['action_dim']} actions)"
        )


def drive(
    robot: Robot,
    policy: ActingPolicy,
    episodes: int,
    recorder: EpisodeRecorder | None = None,
    rate_hz: float | None = None,
    seed: int = 0,
    on_episode=None,
) -> DriveReport:
    """Run `episodes` episodes at `rate_hz` (default: the robot's; 0: as fast as possible)."""
    check_compatible(robot, policy.describe())
    rate = robot.spec.control_hz if rate_hz is None else rate_hz
    period = 1.0 / rate if rate > 0 else 0.0
    report = DriveReport()
    robot.connect()
    try:
        for index in range(episodes):
            # The robot's map goes to the policy as it is (pictures stay uint8 on the wire); the recorder
            # keeps the flat observation.
            observed = robot.reset()
            obs = robot.spec.flatten(observed)
            acting = policy.start_episode(seed + index)
            if recorder is not None:
                recorder.begin(obs, acting)
            steps, tick, last = 0, time.perf_counter(), None
            while steps < robot.spec.horizon:
                action = policy.act(observed if robot.spec.cameras else obs)
                robot.send_action(action)
                sent = time.perf_counter()
                if last is not None:
                    report.periods_ms.append((sent - last) * 1000)
                last, steps = sent, steps + 1
                if period:
                    tick += period
                    wait = tick - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    else:
                        report.late_steps += 1
                        tick = time.perf_counter()
                observed = robot.observe()
                obs = robot.spec.flatten(observed)
                if recorder is not None:
                    recorder.step(action, obs)
                if robot.episode_over():
                    break
            success = bool(robot.success())
            if recorder is not None:
                recorder.end(success)
            report.successes.append(success)
            report.steps.append(steps)
            if on_episode is not None:
                on_episode(index, success, steps)
    finally:
        robot.close()
    return report
