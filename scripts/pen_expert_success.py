"""Measure pen's expert: D4RL success on new targets (reset seeds 1000, 1001, ...), at each given noise
level, the expert's generator seeded with the reset seed. `--attempts` is the number of noise draws the
search may simulate per episode (8, the default expert's); with 1 the expert is the policy alone.

Usage: python scripts/pen_expert_success.py [--weights PATH] [--attempts 8] [--episodes 200] NOISE [NOISE ...]
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from borl.envs import get_task
from borl.envs.pen_policy import SEARCH_ATTEMPTS, WEIGHTS, PenSearchExpert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--attempts", type=int, default=SEARCH_ATTEMPTS)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("noise", type=float, nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = get_task("pen").make_env()
    for noise in args.noise:
        successes = 0
        for seed in range(1000, 1000 + args.episodes):
            obs = env.reset(seed)
            expert = PenSearchExpert(env, np.random.default_rng(seed), noise, args.attempts, args.weights)
            while True:
                obs, _, terminated, truncated, info = env.step(expert.act(obs))
                if terminated or truncated:
                    break
            successes += info["success"]
        found = f"D4RL success {successes} of {args.episodes}"
        print(f"noise {noise}, {args.attempts} attempts: {found}", flush=True)


if __name__ == "__main__":
    main()
