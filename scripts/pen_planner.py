"""Measure the MPPI pen planner (borl/envs/pen_expert.py): D4RL success and wall time per episode.

Usage: python scripts/pen_planner.py SEED [SEED ...]   (each episode takes 5-20 s on one core)
"""

import sys
import time

import numpy as np

from borl.envs import get_task
from borl.envs.pen_expert import PenPlanner


def main(seeds: list[int]) -> None:
    env = get_task("pen").make_env()
    successes = 0
    for seed in seeds:
        obs = env.reset(seed)
        planner = PenPlanner(env, np.random.default_rng(seed), 0.0)
        start, goal_steps = time.perf_counter(), 0
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(planner.act(obs))
            goal_steps += info["goal_achieved"]
        successes += info["success"]
        pen_z = env.raw.data.xpos[env.raw.obj_body_id][2]
        print(
            f"seed {seed}: success {info['success']}, {env.episode_steps} steps, "
            f"goal held {goal_steps} steps, pen height {pen_z:.3f} m, {time.perf_counter() - start:.1f} s",
            flush=True,
        )
    print(f"D4RL success: {successes} of {len(seeds)}")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]])
