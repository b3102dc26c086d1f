"""Where a robosuite step's time goes (`borl bench sim TASK`): MuJoCo's physics, robosuite's
controller, its observables, and the rest, measured on one core with random actions; and borl's fast
step (the compiled controller, borl/envs/fast_osc.py) against robosuite's, on the same actions.

Each part is timed by wrapping the methods robosuite calls for it on one environment instance, and
attributed exclusively (a part's time excludes the wrapped calls inside it), so the parts add up to
the wrapped step; the unwrapped steps are timed first, robosuite's and the fast one alternately
(best of `rounds` each, so that a neighbour's load hits both alike), for the headline rates. The
fast step's parts (`fast_*`) are timed the same way on its own environment.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import mujoco
import numpy as np
import torch

from borl.envs.registry import get_task
from borl.envs.robosuite_env import RobosuiteEnv
from borl.errors import BorlError

# robosuite methods of an environment (and its MjSim) whose time makes up each part of a step.
PARTS: dict[str, tuple[tuple[str, str], ...]] = {
    "physics": (("sim", "step1"), ("sim", "step2"), ("sim", "step"), ("sim", "forward")),
    "controller": (("env", "_pre_action"),),
    "observables": (("env", "_update_observables"), ("env", "_get_observations")),
    "reward_and_checks": (("env", "_post_action"), ("env", "_check_success")),
}
# The same for borl's fast step (borl/envs/fast_osc.py, "fast" its FastOSC): what runs around the
# compiled kernel; the rest is the kernel, robosuite's `set_goal` and the glue.
FAST_PARTS: dict[str, tuple[tuple[str, str], ...]] = {
    "fast_first_step1": (("sim", "step1"),),
    "fast_forward": (("sim", "forward"),),
    "fast_observables": (("fast", "observe"), ("fast", "_advance_observables"), ("fast", "_resample")),
    "fast_checks": (("env", "_check_success"),),
}


def _instrument(owners: dict[str, Any], parts: dict, totals: dict[str, float]) -> None:
    """Wrap the parts' methods on these instances; each adds its exclusive time to totals[part]."""
    stack: list[float] = []  # the time spent in wrapped calls nested inside each open call

    def wrap(owner: Any, name: str, part: str) -> None:
        original: Callable = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            stack.append(0.0)
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = stack.pop()
                totals[part] += elapsed - nested
                if stack:
                    stack[-1] += elapsed

        setattr(owner, name, timed)

    for part, methods in parts.items():
        for owner, name in methods:
            wrap(owners[owner], name, part)


def _steps_seconds(env: Any, actions: np.ndarray, seed: int) -> float:
    env.reset(seed)
    start = time.perf_counter()
    for i, action in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset(seed + i + 1)
    return time.perf_counter() - start


def step_breakdown(task_name: str, steps: int = 400, seed: int = 0, rounds: int = 2) -> dict:
    """Milliseconds per environment step, and per part, of a robosuite task on one core, and the
    steps/s of robosuite's step and of borl's fast step."""
    task = get_task(task_name)
    if task.env_factory is not RobosuiteEnv:
        raise BorlError(f"borl bench sim measures robosuite tasks; '{task_name}' is not one")
    env = task.make_env(fast_controller=False)
    fast_env = task.make_env(fast_controller=True)
    raw = env.raw
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        actions = np.random.default_rng(seed).uniform(-1, 1, size=(steps, task.spec.act_dim))
        _steps_seconds(env, actions[:20], seed)  # warm-up
        _steps_seconds(fast_env, actions[:20], seed)
        plain, fast = float("inf"), float("inf")
        for _ in range(rounds):
            plain = min(plain, _steps_seconds(env, actions, seed))
            fast = min(fast, _steps_seconds(fast_env, actions, seed))
        totals: dict[str, float] = defaultdict(float)
        _instrument({"env": raw, "sim": raw.sim}, PARTS, totals)
        wrapped = _steps_seconds(env, actions, seed)
        fast_totals: dict[str, float] = defaultdict(float)
        fast_owners = {"env": fast_env.raw, "sim": fast_env.raw.sim, "fast": fast_env._fast}
        _instrument(fast_owners, FAST_PARTS, fast_totals)
        fast_wrapped = _steps_seconds(fast_env, actions, seed)
        substeps = int(round(raw.control_timestep / raw.model_timestep))
        model, data = raw.sim.model._model, mujoco.MjData(raw.sim.model._model)
        mujoco.mj_resetData(model, data)
        start = time.perf_counter()
        for _ in range(steps * substeps):
            mujoco.mj_step(model, data)
        raw_physics = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
        env.close()
        fast_env.close()
    parts = {part: 1e3 * totals[part] / steps for part in PARTS}
    parts["python_glue"] = 1e3 * wrapped / steps - sum(parts.values())
    fast_parts = {part: 1e3 * fast_totals[part] / steps for part in FAST_PARTS}
    fast_parts["fast_kernel_and_glue"] = 1e3 * fast_wrapped / steps - sum(fast_parts.values())
    return {
        "task": task_name,
        "steps": steps,
        "substeps": substeps,
        "step_ms": 1e3 * plain / steps,
        "robosuite_steps_per_s": steps / plain,
        "fast_step_ms": 1e3 * fast / steps,
        "fast_steps_per_s": steps / fast,
        "speedup": plain / fast,
        "wrapped_step_ms": 1e3 * wrapped / steps,
        **{f"{part}_ms": value for part, value in parts.items()},
        "raw_mj_step_ms": 1e3 * raw_physics / steps,
        "fast_wrapped_step_ms": 1e3 * fast_wrapped / steps,
        **{f"{part}_ms": value for part, value in fast_parts.items()},
    }
