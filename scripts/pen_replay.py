"""How imitable a run's pen demonstrations are, measured open-loop in the simulator.

The hand and pen always start alike and only the target varies, so a demonstration's actions can be
replayed for another target. Prints (1) how often replaying the demonstration whose target is nearest
succeeds for fresh targets (D4RL's rule), and (2) how often each demonstration still succeeds on its
own target when Gaussian noise is added to every replayed action: a policy that imitates it with an
error of that size can only succeed as often.

Usage: python scripts/pen_replay.py RUN_DIR [--targets 100] [--noise 0.1] [--repeats 20]
"""

import argparse
from pathlib import Path

import numpy as np

from borl.data.store import decode_episode
from borl.envs import get_task

# Observation entries that change with the target: its orientation and the pen's offset from it.
_TARGET_DIMS = [36, 37, 38, 42, 43, 44]


def replay(env, seed: int, actions: np.ndarray, noise: float, rng: np.random.Generator) -> bool:
    """Success of the actions from reset(seed), the last one held to the horizon, each plus noise."""
    env.reset(seed)
    held = np.concatenate([actions, np.repeat(actions[-1:], env.spec.horizon, axis=0)])
    for action in held[: env.spec.horizon]:
        noisy = np.clip(action + rng.normal(0.0, noise, size=action.shape), -1.0, 1.0)
        _, _, terminated, truncated, info = env.step(noisy.astype(np.float32))
        if terminated or truncated:
            break
    return bool(info["success"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `borl run pen` directory (its D0 is read)")
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    demos = [decode_episode(p) for p in sorted((args.run / "data" / "iter_000").glob("demo_*.npz"))]
    if not demos:
        raise SystemExit(f"no demonstrations in {args.run}/data/iter_000")
    env = get_task("pen").make_env()
    rng = np.random.default_rng(0)
    starts = np.stack([d.observations[0][_TARGET_DIMS] for d in demos])
    wins = 0
    for index in range(args.targets):
        seed = 10_000 + index
        obs = env.reset(seed)
        nearest = demos[int(np.abs(starts - obs[_TARGET_DIMS]).sum(axis=1).argmin())]
        wins += replay(env, seed, nearest.actions, 0.0, rng)
    print(f"nearest demonstration replayed for {args.targets} new targets: {wins} succeed")
    rates = np.array(
        [
            np.mean([replay(env, d.lineage.seed, d.actions, args.noise, rng) for _ in range(args.repeats)])
            for d in demos
        ]
    )
    counts = np.histogram(rates, bins=[0, 0.2, 0.4, 0.6, 0.8, 1.01])[0]
    print(
        f"each of {len(demos)} demonstrations replayed {args.repeats} times with noise {args.noise}: "
        f"mean success {rates.mean():.2f}; demonstrations by success [0, .2) [.2, .4) [.4, .6) "
        f"[.6, .8) [.8, 1]: {counts.tolist()}"
    )


if __name__ == "__main__":
    main()
