"""The one training loop for every preset: fit the critic (when the algorithm has one) and the policy
(unless it is frozen) on all data.

When the two are independent (the policy's loss does not read the critic, as with implicit
extraction) and there are at least two threads, they train at the same time: the policy on one
thread and the critic on the others, each a single-threaded stream of small matmuls (about 0.62 of
the one-core roofline, where one stream split over two cores reaches about 0.5); whichever has steps
left afterwards finishes on all threads. How many steps run side by side is fixed by the two updates'
FLOP counts, not by timing, so a run is reproducible.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from borl.agent import Agent
from borl.config import RunConfig
from borl.data.episode import Episode
from borl.data.normalization import Normalizer
from borl.data.observations import ObservationSpec
from borl.data.replay import TransitionDataset
from borl.errors import BorlError
from borl.logger import Logger


@dataclass
class Phase:
    """One network's training: `steps` updates on batches drawn with its own generator (from
    `indices` when given, with a fixed `share` of each batch from `favoured`); flops_per_step balances
    it against another phase run beside it."""

    name: str
    steps: int
    update: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    generator: torch.Generator
    flops_per_step: float
    indices: torch.Tensor | None = None
    favoured: torch.Tensor | None = None
    share: float = 0.0


class TrainingProgress:
    """A tqdm bar, the latest losses and every logged step's (the training curves), updated from both
    training threads."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar
        self.info: dict[str, float] = {}
        self.curves: list[dict[str, float | str]] = []
        self.lock = threading.Lock()

    def record(self, name: str, result: dict[str, torch.Tensor] | None, step: int = 0) -> None:
        with self.lock:
            if result is not None:
                values = {k: float(v) for k, v in result.items()}
                self.info.update({f"{name}/{k}": v for k, v in values.items()})
                self.curves.append({"phase": name, "step": step, **values})
                self.bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in self.info.items()})
            self.bar.update()


def _run_steps(
    phase: Phase,
    start: int,
    stop: int,
    data: TransitionDataset,
    batch_size: int,
    progress: TrainingProgress,
    cancelled: threading.Event | None = None,
) -> None:
    """Steps start..stop-1 of phase; returns early once `cancelled` is set."""
    for step in range(start, stop):
        if cancelled is not None and cancelled.is_set():
            return
        batch = data.sample(batch_size, phase.generator, phase.indices, phase.favoured, phase.share)
        result = phase.update(batch)
        logged = step % 200 == 0 or step == phase.steps - 1
        progress.record(phase.name, result if logged else None, step)


def _side_by_side(
    phase: Phase,
    steps: int,
    threads: int,
    data: TransitionDataset,
    batch_size: int,
    progress: TrainingProgress,
    cancelled: threading.Event,
) -> None:
    """The first `steps` of phase on `threads` torch threads (this thread's own setting); a failure
    here sets `cancelled`, so the phase on the other thread stops too."""
    try:
        torch.set_num_threads(threads)
        _run_steps(phase, 0, steps, data, batch_size, progress, cancelled)
    except BaseException:
        cancelled.set()
        raise


def run_phases(
    phases: Sequence[Phase],
    data: TransitionDataset,
    batch_size: int,
    threads: int,
    overlap: bool,
    progress: TrainingProgress,
) -> None:
    """Run the phases in order on `threads` threads, or, with `overlap` and two phases, side by side.

    Side by side, the second phase runs on threads // 2 threads in a helper thread and the first on
    the rest, for as many steps as take equal FLOPs; the remaining steps of each then run on all
    threads. Each phase draws only from its own generator and the critic draws no other random
    numbers, so the result equals running the phases one after the other on the same thread counts.
    """
    if not overlap or len(phases) != 2:
        torch.set_num_threads(threads)
        for phase in phases:
            _run_steps(phase, 0, phase.steps, data, batch_size, progress)
        return
    first, second = phases
    first_side = min(first.steps, round(second.steps * second.flops_per_step / first.flops_per_step))
    second_side = min(second.steps, round(first.steps * first.flops_per_step / second.flops_per_step))
    cancelled = threading.Event()
    shared = (data, batch_size, progress, cancelled)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="borl-train") as pool:
        helper = pool.submit(_side_by_side, second, second_side, max(1, threads // 2), *shared)
        _side_by_side(first, first_side, max(1, threads - threads // 2), *shared)
        helper.result()
    torch.set_num_threads(threads)
    _run_steps(first, first_side, first.steps, data, batch_size, progress)
    _run_steps(second, second_side, second.steps, data, batch_size, progress)


def overlaps(config: RunConfig) -> bool:
    """Whether critic and policy train side by side: asked for, on two or more CPU threads, and
    independent (AWR weights the policy's loss by the critic trained before it; a critic that shares
    the policy's encoder reads it as the policy's training leaves it)."""
    train = config.train
    shared = config.uses_critic and config.critic.share_encoder
    independent = not config.extraction.method.weights_policy_loss and not shared
    return train.overlap and train.threads >= 2 and config.device == "cpu" and independent


def train_agent(
    config: RunConfig,
    episodes: Sequence[Episode],
    obs_dim: int,
    act_dim: int,
    seed: int,
    frozen: Agent | None = None,
    description: str = "train",
    logger: Logger | None = None,
    proposer: Agent | None = None,
    curves: list[dict] | None = None,
    observation: ObservationSpec | None = None,
) -> tuple[Agent, dict[str, float]]:
    """A new agent trained from scratch on `episodes`; returns it and the final losses and timing.

    Training from scratch each iteration keeps the critic from carrying wrong values forward, which
    is what made a warm-started critic diverge in the first prototype (FACTS.md).

    With `frozen` (steering after iteration 0), the new agent keeps that agent's policy and its
    normaliser, the action space the policy was trained in, and only the critic is trained.
    With AWR extraction the policy's loss is weighted by exp(beta * (Q - V)) under the critic
    trained just before it, so the two cannot overlap; with critic.share_encoder the policy trains
    first and the critic after it, on the policy's finished encoder.
    `curves`, when given, receives every 200th step's losses of each phase (the training curves).
    A critic that reads policy samples (critic.policy_samples, e.g. calql) gets them from `proposer`,
    the agent that collected the data, drawn once for every transition before training; without a
    proposer (iteration 0) it trains without them. `observation` is an image task's (its cameras).
    """
    torch.manual_seed(seed)
    normalizer = Normalizer.fit_episodes(episodes) if frozen is None else frozen.normalizer
    agent = Agent(config, obs_dim, act_dim, normalizer, device=config.device, observation=observation)
    data = TransitionDataset(
        episodes, normalizer, config.device, config.critic.discount, crop=config.encoder.crop
    )
    steps = config.train
    rows = steps.batch_size

    def generator(offset: int) -> torch.Generator:
        return torch.Generator(device=config.device).manual_seed(seed + offset)

    if agent.critic is not None and agent.critic.policy_samples and proposer is not None:
        _add_policy_actions(data, episodes, normalizer, proposer, agent.critic.policy_samples, generator(2))
    phases = []
    if agent.critic is not None:
        critic_flops = agent.critic.update_flops_per_row() * rows
        critic_steps = scaled_steps(steps.critic_steps, data.size, steps.epochs, steps.batch_size)
        phases.append(Phase("critic", critic_steps, agent.critic.update, generator(0), critic_flops))
    if frozen is None:
        mask = config.algorithm_class.policy_episode_mask(episodes, steps.keep_fastest)
        if not mask.any():
            raise BorlError(
                f"no successful episode to imitate ({config.algorithm} imitates successful ones only)"
            )
        indices, demos = _policy_draw(data, episodes, mask, steps.demo_share)
        update = config.extraction.method.policy_update(agent.policy.update, agent.critic, config.extraction)
        flops = agent.policy.update_flops_per_row() * rows
        drawn = sum(len(part) for part in (indices, demos) if part is not None) or data.size
        policy_epochs = steps.epochs if steps.policy_epochs is None else steps.policy_epochs
        policy_steps = scaled_steps(steps.policy_steps, drawn, policy_epochs, steps.batch_size)
        phases.append(
            Phase("policy", policy_steps, update, generator(1), flops, indices, demos, steps.demo_share)
        )
    else:
        agent.keep_policy(frozen)
    if config.uses_critic and config.critic.share_encoder:
        phases.reverse()  # the critic reads the encoder as the policy's training leaves it
    start = time.perf_counter()
    total = sum(p.steps for p in phases)
    with (logger or Logger(progress=False)).bar(total, description, "step") as bar:
        tracker = TrainingProgress(bar)
        run_phases(phases, data, rows, steps.threads, overlaps(config), tracker)
    info = dict(tracker.info)
    info["train_seconds"] = time.perf_counter() - start
    info["transitions"] = float(data.size)
    if curves is not None:
        curves.extend(sorted(tracker.curves, key=lambda row: (row["phase"], row["step"])))
    return agent, info


def scaled_steps(steps: int, transitions: int, epochs: float, batch_size: int) -> int:
    """A network's updates this iteration: `steps`, or more where `epochs` passes over its
    `transitions` at `batch_size` rows an update need more."""
    return max(steps, math.ceil(epochs * transitions / batch_size))


def _policy_draw(
    data: TransitionDataset, episodes: Sequence[Episode], mask: np.ndarray, demo_share: float
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The policy's transitions (None: all) and, with a demo share, the demonstrations' apart from
    them: a fixed share of every batch then comes from D0 however many rollouts join it, so the
    policy is not left imitating mostly its own drift (RLPD's symmetric sampling). Without any
    other data (iteration 0) the batches are uniform."""
    if demo_share == 0:
        return (None if mask.all() else data.subset(mask)), None
    is_demo = np.array([e.lineage.source == "demo" for e in episodes])
    if not is_demo.any():
        raise BorlError("train.demo_share needs demonstrations in the data, and it has none")
    others = mask & ~is_demo
    if not others.any():
        return data.subset(mask), None
    return data.subset(others), data.subset(is_demo)


def _add_policy_actions(
    data: TransitionDataset,
    episodes: Sequence[Episode],
    normalizer: Normalizer,
    proposer: Agent,
    count: int,
    generator: torch.Generator,
) -> None:
    """`count` of the proposer's actions for each transition's state, in the new agent's normalised
    action space: the dataset's policy_actions (transitions, count, act_dim)."""
    obs = np.concatenate([e.observations[:-1] for e in episodes])
    actions = proposer.propose(obs, count, generator)
    normalised = np.clip(normalizer.normalize_actions(actions), -1.0, 1.0)
    data.tensors["policy_actions"] = torch.from_numpy(normalised).to(data.device)
