"""Train pen's feedback expert with PPO on gymnasium's dense reward, starting from behaviour cloning of
the planner's demonstrations and keeping a decaying cloning term (DAPG's recipe, PPO in place of NPG).

    python scripts/pen_rl.py PLANNER_DEMOS.hdf5 OUT.pt [--iterations 2500] [--seed 2]

PLANNER_DEMOS.hdf5 holds demonstrations of the planning expert (borl/envs/pen_expert.py) in borl's
robomimic layout; if the file does not exist, the script first makes 25 (seed 0, about 6 minutes).
Each iteration runs 32 episodes of 100 steps with the policy's own exploration noise and updates on
them; every 10th also runs 32 with the mean action. Writes OUT.pt (weights and observation normaliser
at the best of those evaluations), OUT.last.pt (at the last) and OUT.log (one JSON line per iteration).
OUT.state.pt holds the whole training state (every 10 iterations): run the same command again
after a crash and it goes on from there, bit for bit.
borl/envs/pen_expert.pt, pen's default expert, was trained this way (docs/tasks.md says with what).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from borl.envs import get_task
from borl.envs.pen import gymnasium_env, success_step
from borl.envs.pen_expert import PenPlanner
from borl.envs.pen_policy import PenPolicyNet
from borl.formats.robomimic import read_robomimic, write_robomimic
from borl.rollout.demos import collect_demos

HORIZON = 100
GAMMA, LAMBDA, CLIP = 0.99, 0.95, 0.2


def planner_demos(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All (observation, action) pairs of the planner's demonstrations in path, made first if missing."""
    task = replace(get_task("pen"), expert_factory=PenPlanner)
    if not path.exists():
        episodes, _ = collect_demos(task, 25, seed=0, noise=0.0)
        write_robomimic(path, episodes, task.spec)
    episodes = read_robomimic(path, task.spec)
    obs = np.concatenate([e.observations[:-1] for e in episodes])
    actions = np.concatenate([e.actions for e in episodes])
    return obs.astype(np.float32), actions.astype(np.float32)


class Value(nn.Module):
    """The state-value network PPO's advantages use, on the policy's normalised observation."""

    def __init__(self, obs_dim: int, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def rollout(envs, policy: PenPolicyNet, rng: np.random.Generator, noise: bool) -> dict:
    """One 100-step episode in each env; returns arrays (T, E, ...) and each episode's D4RL verdict."""
    obs = np.stack([env.reset(seed=int(rng.integers(2**31)))[0] for env in envs]).astype(np.float32)
    buf = {k: [] for k in ("obs", "raw_actions", "logp", "rewards")}
    goals = []
    for _ in range(HORIZON):
        with torch.no_grad():
            mean = policy(torch.from_numpy(obs))
            std = policy.log_std.exp()
            raw = mean + std * torch.randn_like(mean) if noise else mean
            logp = torch.distributions.Normal(mean, std).log_prob(raw).sum(-1)
        actions = raw.clamp(-1, 1).numpy()
        next_obs, rewards, flags = [], [], []
        for i, env in enumerate(envs):
            o, r, _, _, info = env.step(actions[i])
            next_obs.append(o)
            rewards.append(r)
            flags.append(bool(info["success"]))
        goals.append(flags)
        buf["obs"].append(obs)
        buf["raw_actions"].append(raw.numpy())
        buf["logp"].append(logp.numpy())
        buf["rewards"].append(np.asarray(rewards, dtype=np.float32))
        obs = np.stack(next_obs).astype(np.float32)
    out = {k: np.stack(v) for k, v in buf.items()}
    out["last_obs"] = obs
    out["success"] = np.array([success_step(column) is not None for column in np.transpose(goals)])
    return out


def advantages(values: torch.Tensor, last: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """GAE(0.99, 0.95) over (T, E) arrays; every episode is cut by time, so the last step bootstraps."""
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(last)
    for t in reversed(range(len(rewards))):
        next_v = last if t == len(rewards) - 1 else values[t + 1]
        running = rewards[t] + GAMMA * next_v - values[t] + GAMMA * LAMBDA * running
        adv[t] = running
    return adv


def ppo_update(
    policy: PenPolicyNet,
    value: Value,
    pi_opt: torch.optim.Optimizer,
    v_opt: torch.optim.Optimizer,
    data: dict,
    adv: torch.Tensor,
    values: torch.Tensor,
    demos: tuple[torch.Tensor, torch.Tensor],
    bc_weight: float,
) -> None:
    """10 epochs of 4 minibatches: PPO's clipped objective plus bc_weight x the cloning loss on a batch
    of demonstrations, and the value regression to the GAE returns."""
    demo_x, demo_y = demos
    returns = (adv + values).reshape(-1)
    flat_obs = torch.from_numpy(data["obs"]).flatten(0, 1)
    flat_raw = torch.from_numpy(data["raw_actions"]).flatten(0, 1)
    old_logp = torch.from_numpy(data["logp"]).reshape(-1)
    flat_adv = adv.reshape(-1)
    flat_adv = (flat_adv - flat_adv.mean()) / (flat_adv.std() + 1e-8)
    n = len(flat_obs)
    for _ in range(10):
        for chunk in torch.randperm(n).split(n // 4):
            mean = policy(flat_obs[chunk])
            dist = torch.distributions.Normal(mean, policy.log_std.exp())
            ratio = (dist.log_prob(flat_raw[chunk]).sum(-1) - old_logp[chunk]).exp()
            a = flat_adv[chunk]
            pi_loss = -torch.min(ratio * a, ratio.clamp(1 - CLIP, 1 + CLIP) * a).mean()
            if bc_weight > 1e-3:
                idx = torch.randint(len(demo_x), (256,))
                pi_loss = pi_loss + bc_weight * ((policy(demo_x[idx]) - demo_y[idx]) ** 2).mean()
            pi_opt.zero_grad()
            pi_loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            pi_opt.step()
            v_loss = ((value(policy.normalise(flat_obs[chunk])) - returns[chunk]) ** 2).mean()
            v_opt.zero_grad()
            v_loss.backward()
            v_opt.step()


def save(obj: object, path: Path) -> None:
    """torch.save, atomically (a crash never leaves a half-written file)."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demos", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--envs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--bc-weight", type=float, default=0.1)
    parser.add_argument("--bc-decay", type=float, default=0.995)
    parser.add_argument("--init-std", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--reward-scale", type=float, default=0.1)
    parser.add_argument("--bc-steps", type=int, default=3000, help="cloning steps before PPO")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    demo_obs, demo_actions = planner_demos(args.demos)
    demo_x, demo_y = torch.from_numpy(demo_obs), torch.from_numpy(demo_actions)
    spec = get_task("pen").spec
    policy, value = PenPolicyNet(), Value(spec.obs_dim)
    pi_opt = torch.optim.Adam(policy.parameters(), lr=args.lr)
    v_opt = torch.optim.Adam(value.parameters(), lr=1e-3)
    state_path = args.out.with_suffix(".state.pt")
    first, best = 0, -1.0
    if state_path.exists():
        state = torch.load(state_path, weights_only=False)
        for module, key in ((policy, "policy"), (value, "value"), (pi_opt, "pi_opt"), (v_opt, "v_opt")):
            module.load_state_dict(state[key])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        first, best = state["iteration"] + 1, state["best"]
        print(f"resuming after iteration {state['iteration']}", flush=True)
    else:
        policy.fit_normaliser(demo_obs)
        policy.log_std.data.fill_(float(np.log(args.init_std)))
        bc_opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
        for _ in range(args.bc_steps):
            idx = torch.randint(len(demo_x), (256,))
            loss = ((policy(demo_x[idx]) - demo_y[idx]) ** 2).mean()
            bc_opt.zero_grad()
            loss.backward()
            bc_opt.step()
        print(f"BC loss {loss.item():.4f}", flush=True)

    envs = [gymnasium_env(spec.env_name, HORIZON) for _ in range(args.envs)]
    log_path = args.out.with_suffix(".log")
    kept = (
        [line for line in log_path.read_text().splitlines() if json.loads(line)["iteration"] < first]
        if first
        else []
    )
    log_path.write_text("".join(line + "\n" for line in kept))
    log = log_path.open("a")
    start = time.time()
    for it in range(first, args.iterations):
        data = rollout(envs, policy, rng, noise=True)
        obs = torch.from_numpy(data["obs"])
        with torch.no_grad():
            values = value(policy.normalise(obs))
            last = value(policy.normalise(torch.from_numpy(data["last_obs"])))
        adv = advantages(values, last, torch.from_numpy(data["rewards"]) * args.reward_scale)
        bc_weight = args.bc_weight * args.bc_decay**it
        ppo_update(policy, value, pi_opt, v_opt, data, adv, values, (demo_x, demo_y), bc_weight)
        record = {
            "iteration": it,
            "seconds": round(time.time() - start, 1),
            "return": float(data["rewards"].sum(0).mean()),
            "success_noisy": float(data["success"].mean()),
            "std": float(policy.log_std.detach().exp().mean()),
            "bc_weight": bc_weight,
        }
        if it % 10 == 9:
            evaluation = rollout(envs, policy, rng, noise=False)
            record["success_mean_action"] = float(evaluation["success"].mean())
            score = record["success_mean_action"] + record["success_noisy"]
            save(policy.state_dict(), args.out.with_suffix(".last.pt"))
            if score >= best:
                best = score
                save(policy.state_dict(), args.out)
                record["saved"] = True
        log.write(json.dumps(record) + "\n")
        log.flush()
        print(record, flush=True)
        if it % 10 == 9:
            state = {
                "policy": policy.state_dict(),
                "value": value.state_dict(),
                "pi_opt": pi_opt.state_dict(),
                "v_opt": v_opt.state_dict(),
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "iteration": it,
                "best": best,
            }
            save(state, state_path)


if __name__ == "__main__":
    main()
