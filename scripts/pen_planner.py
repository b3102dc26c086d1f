"""Measure the planning pen expert (borl/envs/pen_expert.py): D4RL success, search steps, CPU time and
the mean absolute change of its actions from one step to the next (how jagged they are) per episode.
Its random generator is the one `borl demos` would give an expert for that reset seed.

Usage: python scripts/pen_planner.py [--noise X] SEED [SEED ...]
"""

import argparse
import time

import numpy as np

from borl.envs import get_task
from borl.envs.demos import expert_rng
from borl.envs.pen_expert import PenPlanner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("seeds", type=int, nargs="+")
    args = parser.parse_args()
    env = get_task("pen").make_env()
    successes, seconds, changes = 0, 0.0, []
    for seed in args.seeds:
        obs = env.reset(seed)
        planner = PenPlanner(env, expert_rng(seed), args.noise)
        start, goal_steps = time.process_time(), 0
        terminated = truncated = False
        actions = []
        while not (terminated or truncated):
            actions.append(planner.act(obs))
            obs, _, terminated, truncated, info = env.step(actions[-1])
            goal_steps += info["goal_achieved"]
        seconds += time.process_time() - start
        successes += info["success"]
        changes.append(float(np.abs(np.diff(actions, axis=0)).mean()))
        print(
            f"seed {seed}: success {info['success']}, {env.episode_steps} steps, goal held {goal_steps} "
            f"steps, {planner.search_steps} search steps, {time.process_time() - start:.1f} CPU s, "
            f"mean |action change| {changes[-1]:.3f}",
            flush=True,
        )
    n = len(args.seeds)
    print(
        f"D4RL success: {successes} of {n}, {seconds / n:.1f} CPU s per episode, mean |action change| "
        f"{np.mean(changes):.3f}"
    )


if __name__ == "__main__":
    main()
