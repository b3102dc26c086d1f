"""Throughput against this machine's limit: training and sampling FLOP rates against the measured
matrix-multiply roofline, and collection speed against the simulator-plus-policy limit."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from borl.agent import Agent
from borl.config import RunConfig, merge
from borl.data.episode import Episode, Lineage
from borl.data.normalization import Normalizer
from borl.data.observations import ObservationSpec
from borl.data.replay import TransitionDataset
from borl.eager_reference import EagerReference
from borl.policies.networks import linear, matmul_flops_per_row
from borl.train import Phase, TrainingProgress, overlaps, run_phases


def _synchronize(device: str) -> None:
    """Wait for queued GPU work, so that wall-clock time covers it (a no-op on the CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def _best_seconds(fn: Callable[[], object], repeats: int, rounds: int = 3, device: str = "cpu") -> float:
    """Best-of-rounds mean seconds per call after one warm-up call."""
    fn()
    _synchronize(device)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        _synchronize(device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def roofline(threads: int, size: int | None = None, device: str = "cpu") -> float:
    """fp32 matrix-multiply GFLOP/s on `device` (with `threads` threads on the CPU): the faster of
    torch's matmul and the oneDNN GEMM that borl's layers use (networks.linear), whichever library
    reaches more on this machine.

    The matrices are 2048 wide on the CPU and 8192 on a GPU, large enough to reach the peak.
    """
    size = size or (8192 if device == "cuda" else 2048)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    with torch.no_grad():
        seconds = min(
            _best_seconds(lambda: a @ b, repeats=5, device=device),
            _best_seconds(lambda: linear(a, b), repeats=5, device=device),
        )
    torch.set_num_threads(previous)
    return 2 * size**3 / seconds / 1e9


def synthetic_agent(
    config: RunConfig, obs_dim: int, act_dim: int, observation: ObservationSpec | None = None
) -> Agent:
    normalizer = Normalizer(
        np.zeros(obs_dim, np.float32),
        np.ones(obs_dim, np.float32),
        -np.ones(act_dim, np.float32),
        np.ones(act_dim, np.float32),
    )
    return Agent(config, obs_dim, act_dim, normalizer, device=config.device, observation=observation)


def synthetic_episodes(transitions: int, obs_dim: int, act_dim: int, length: int = 400) -> Iterator[Episode]:
    """Episodes of random transitions (`transitions` rounded up to whole episodes), made one at a
    time so that a large store can be written without holding it all."""
    rng = np.random.default_rng(0)
    for index in range(-(-transitions // length)):
        yield Episode(
            observations=rng.normal(size=(length + 1, obs_dim)).astype(np.float32),
            actions=rng.uniform(-1, 1, size=(length, act_dim)).astype(np.float32),
            rewards=np.zeros(length, np.float32),
            terminated=False,
            success=False,
            lineage=Lineage("rollout", 1, index, seed=index),
        )


def synthetic_buffer(size: int, obs_dim: int, act_dim: int) -> dict[str, np.ndarray]:
    """A NumPy replay buffer of random transitions, for the eager reference."""
    rng = np.random.default_rng(0)
    return {
        "obs": rng.normal(size=(size, obs_dim)).astype(np.float32),
        "next_obs": rng.normal(size=(size, obs_dim)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(size, act_dim)).astype(np.float32),
        "rewards": (rng.random(size) < 0.05).astype(np.float32),
        "terminals": (rng.random(size) < 0.05).astype(np.float32),
    }


def _training_seconds(
    agent: Agent, data: TransitionDataset, config: RunConfig, policy_steps: int, overlap: bool
) -> tuple[float, float]:
    """Best-of-3 wall seconds of training `policy_steps` policy updates and the critic updates of
    equal FLOPs, as train.py runs them; and the FLOPs of that work."""
    rows = config.train.batch_size
    critic_flops = agent.critic.update_flops_per_row() * rows
    policy_flops = agent.policy.update_flops_per_row() * rows
    critic_steps = round(policy_steps * policy_flops / critic_flops)

    def train() -> None:
        generators = [torch.Generator(device=config.device).manual_seed(i) for i in range(2)]
        phases = [
            Phase("critic", critic_steps, agent.critic.update, generators[0], critic_flops),
            Phase("policy", policy_steps, agent.policy.update, generators[1], policy_flops),
        ]
        with tqdm(disable=True) as bar:
            run_phases(phases, data, rows, config.train.threads, overlap, TrainingProgress(bar))

    seconds = _best_seconds(train, repeats=1, device=config.device)
    return seconds, critic_steps * critic_flops + policy_steps * policy_flops


def _one_stream_ratio(
    update: Callable[[dict[str, torch.Tensor]], object],
    flops_per_step: float,
    data: TransitionDataset,
    batch_size: int,
    peak_one_thread: float,
    device: str,
) -> float:
    """The share of the one-thread roofline that `update` reaches alone on one thread: about the
    most that two such streams side by side reach of the two-thread roofline (about twice the
    one-thread one on a CPU)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    generator = torch.Generator(device=device).manual_seed(0)
    seconds = _best_seconds(lambda: update(data.sample(batch_size, generator)), repeats=20, device=device)
    torch.set_num_threads(previous)
    return flops_per_step / seconds / 1e9 / peak_one_thread


def bench_train(config: RunConfig, obs_dim: int = 19, act_dim: int = 7, threads: int = 2) -> dict:
    """Achieved GFLOP/s of the update step (policy + Q + V) as training runs it, on 100k transitions:
    critic and policy side by side on their own threads where train.py overlaps them, and one after
    the other on all threads, beside the eager reference; all against the roofline of the same run."""
    config = merge(config, {"train": {"threads": threads}})
    device = config.device
    agent = synthetic_agent(config, obs_dim, act_dim)
    data = TransitionDataset(
        list(synthetic_episodes(100_000, obs_dim, act_dim)), agent.normalizer, device=device
    )
    steps = 40 * threads
    overlap = overlaps(config)
    seconds, flops = _training_seconds(agent, data, config, steps, overlap)
    sequential_seconds, _ = _training_seconds(agent, data, config, steps, overlap=False)
    per_update = agent.critic.update_flops_per_row() + agent.policy.update_flops_per_row()
    per_update *= config.train.batch_size
    buffer = synthetic_buffer(100_000, obs_dim, act_dim)
    eager = EagerReference(config, obs_dim, act_dim, buffer, device=device)
    eager_seconds = _best_seconds(eager.update, repeats=30, device=device)
    peak = roofline(threads, device=device)
    peak_one_thread = roofline(1, device=device)
    rows = config.train.batch_size
    alone = {
        name: _one_stream_ratio(
            learner.update, learner.update_flops_per_row() * rows, data, rows, peak_one_thread, device
        )
        for name, learner in (("critic", agent.critic), ("policy", agent.policy))
    }
    achieved = flops / seconds / 1e9
    sequential = flops / sequential_seconds / 1e9
    return {
        "device": device,
        "threads": threads,
        "batch_size": config.train.batch_size,
        "overlapped": overlap,
        "update_ms": per_update / achieved / 1e6,
        "gflop_per_update": per_update / 1e9,
        "achieved_gflops": achieved,
        "roofline_gflops": peak,
        "ratio": achieved / peak,
        "sequential_update_ms": per_update / sequential / 1e6,
        "sequential_ratio": sequential / peak,
        "eager_update_ms": eager_seconds * 1e3,
        "eager_ratio": per_update / eager_seconds / 1e9 / peak,
        "speedup_over_eager": eager_seconds * achieved * 1e9 / per_update,
        "roofline_one_thread_gflops": peak_one_thread,
        "critic_alone_ratio": alone["critic"],
        "policy_alone_ratio": alone["policy"],
    }


def bench_sample(
    config: RunConfig, envs: int = 8, obs_dim: int = 19, act_dim: int = 7, threads: int = 1
) -> dict:
    """Achieved GFLOP/s of best-of-N action selection for a batch of environments (one worker)."""
    torch.set_num_threads(threads)
    agent = synthetic_agent(config, obs_dim, act_dim)
    obs = np.random.default_rng(0).normal(size=(envs, obs_dim)).astype(np.float32)
    generators = [torch.Generator().manual_seed(i) for i in range(envs)]
    seconds = _best_seconds(lambda: agent.act(obs, generators), repeats=20)
    per_env = policy_flops_per_step(agent)
    peak = roofline(threads, device=config.device)
    achieved = per_env * envs / seconds / 1e9
    return {
        "device": config.device,
        "threads": threads,
        "envs": envs,
        "candidates": config.extraction.candidates,
        "act_ms": seconds * 1e3,
        "mflop_per_env_step": per_env / 1e6,
        "achieved_gflops": achieved,
        "roofline_gflops": peak,
        "ratio": achieved / peak,
    }


def policy_flops_per_step(agent: Agent) -> float:
    """FLOPs the deployed agent spends per environment step: N candidates x T denoising steps, plus
    the critic scoring the N candidates."""
    implicit = agent.extraction.at_rollout
    n = agent.extraction.candidates if implicit else 1
    flops = n * agent.policy.sample_flops_per_action()
    if implicit:
        flops += n * matmul_flops_per_row(agent.critic.q_net)
    return float(flops)


def raw_sim_steps_per_second(config: RunConfig, steps: int = 600) -> float:
    """Single-process environment steps/s with random actions: the simulator alone."""
    from borl.rollout.collector import make_env

    env = make_env(config)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    count, start = 0, time.perf_counter()
    while count < steps:
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, size=7).astype(np.float32))
        count += 1
        if terminated or truncated:
            env.reset(seed=count)
    rate = count / (time.perf_counter() - start)
    env.close()
    return rate


def bench_rollout(config: RunConfig, workers: list[int], episodes: int, directory: Path) -> dict:
    """Collection steps/s of borl against the limit W / (sim step time + policy FLOPs / roofline).

    Each of the W x envs_per_worker environments runs `episodes` episodes, so every W is measured
    over the same number of waves: at the end of a collection one worker runs out of jobs while the
    other finishes its last episodes, and that tail (about half an episode of one idle core) must be
    the same share of each measurement.
    """
    from borl.data.episode import Lineage
    from borl.rollout.collector import Collector, EpisodeJob

    agent = synthetic_agent(config, 19, 7)
    checkpoint = directory / "bench_checkpoint"
    agent.save(checkpoint)
    sim_rate = raw_sim_steps_per_second(config)
    peak_one_core = roofline(1, device=config.device)
    flops = policy_flops_per_step(agent)
    step_seconds = 1 / sim_rate + flops / (peak_one_core * 1e9)
    results = []
    for w in workers:
        run_config = merge(config, {"workers": w})
        count_jobs = episodes * w * run_config.envs_per_worker
        jobs = [EpisodeJob(Lineage("bench", 0, i, seed=i)) for i in range(count_jobs)]
        steps = 0

        def count(episode) -> None:
            nonlocal steps
            steps += len(episode)

        with Collector(run_config) as collector:
            collector.run(checkpoint, jobs[: w * run_config.envs_per_worker], lambda e: None)
            start = time.perf_counter()
            collector.run(checkpoint, jobs, count)
            seconds = time.perf_counter() - start
        limit = w / step_seconds
        results.append(
            {
                "workers": w,
                "episodes": count_jobs,
                "steps_per_second": steps / seconds,
                "limit": limit,
                "ratio": steps / seconds / limit,
            }
        )
    return {
        "raw_sim_steps_per_second": sim_rate,
        "policy_mflop_per_step": flops / 1e6,
        "roofline_one_core_gflops": peak_one_core,
        "policy_share_of_step": flops / (peak_one_core * 1e9) / step_seconds,
        "per_workers": results,
        "ratio": min(r["ratio"] for r in results),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_memory(transitions: int, directory: Path, episode_length: int = 400, batch_size: int = 256) -> dict:
    """Peak RSS of a store of `transitions` Lift-shaped transitions: written, read back, made into the
    training dataset, then sampled; sampling must not copy the buffer (RSS stays flat)."""
    from borl.data.store import EpisodeStore

    store = EpisodeStore(directory)
    for episode in synthetic_episodes(transitions, 19, 7, episode_length):
        store.append(episode)
    start_rss = peak_rss_mb()
    episodes = store.load()
    data = TransitionDataset(episodes, Normalizer.fit_episodes(episodes))
    del episodes
    built_rss = peak_rss_mb()
    dataset_mb = data.nbytes() / 2**20
    generator = torch.Generator().manual_seed(0)
    seconds = _best_seconds(lambda: data.sample(batch_size, generator), repeats=200)
    return {
        "transitions": data.size,
        "dataset_mb": dataset_mb,
        "peak_rss_before_load_mb": start_rss,
        "peak_rss_after_build_mb": built_rss,
        "peak_rss_after_sampling_mb": peak_rss_mb(),
        "sample_ms": seconds * 1e3,
    }


def _latency_ms(url: str, obs: np.ndarray, actions: int, seed: int, start: threading.Barrier) -> list[float]:
    """One client: an episode's reset, then `actions` round trips, each timed."""
    from borl.robot.client import PolicyClient

    client = PolicyClient(url)
    try:
        client.start_episode(seed)
        client.act(obs)  # the first action warms the connection and the server's thread
        start.wait()
        times = []
        for _ in range(actions):
            began = time.perf_counter()
            client.act(obs)
            times.append((time.perf_counter() - began) * 1e3)
        return times
    finally:
        client.close()


def bench_serve(
    config: RunConfig, directory: Path, clients: list[int], actions: int, threads: int, max_batch: int = 8
) -> dict:
    """Round-trip time per action through `borl serve` on localhost (a real server process): p50 and
    p99 for each number of clients acting at once, and the server's actions/s, against the 50 ms
    period of a 20 Hz control loop; with the server acting one request at a time (max_batch 1) and
    batching the clients waiting (max_batch)."""
    from borl.envs.registry import get_task

    spec = get_task(config.task).spec
    checkpoint = directory / "iter_000"
    synthetic_agent(config, spec.obs_dim, spec.act_dim, spec.observation).save(checkpoint)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal(spec.obs_dim).astype(np.float32)
    if spec.cameras:  # an image task's robot sends a map with its uint8 pictures (docs/robot.md)
        pictures = rng.integers(0, 256, (len(spec.cameras), spec.image_size, spec.image_size, 3), np.uint8)
        from borl.robot.base import RobotSpec

        robot = RobotSpec.of_task(spec, spec.name, spec.act_dim, 20.0, spec.horizon)
        obs = robot.split(spec.observation.pack(obs[None], pictures[None])[0])
    result: dict = {
        "candidates": config.extraction.candidates,
        "server_threads": threads,
        "control_period_ms": 1000 / 20,
    }
    for batch in sorted({1, max_batch}):
        with _server(checkpoint, threads, batch) as url:
            for count in clients:
                barrier = threading.Barrier(count)
                with ThreadPoolExecutor(max_workers=count) as pool:
                    began = time.perf_counter()
                    futures = [pool.submit(_latency_ms, url, obs, actions, i, barrier) for i in range(count)]
                    times = np.concatenate([f.result() for f in futures])
                    seconds = time.perf_counter() - began
                key = f"batch{batch}_clients{count}"
                result[f"{key}_p50_ms"] = float(np.percentile(times, 50))
                result[f"{key}_p99_ms"] = float(np.percentile(times, 99))
                result[f"{key}_within_period"] = float(np.mean(times <= result["control_period_ms"]))
                result[f"{key}_actions_per_s"] = count * actions / seconds
    return result


@contextmanager
def _server(checkpoint: Path, threads: int, max_batch: int) -> Iterator[str]:
    """`borl serve CHECKPOINT` in its own process on a free port; yields its address."""
    command = [sys.executable, "-m", "borl", "serve", str(checkpoint), "--port", "0"]
    command += ["--threads", str(threads), "--max-batch", str(max_batch)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        if " on ws://" not in line:
            raise RuntimeError(f"the server did not start: {line!r}")
        yield line.split(" on ")[1].split()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
