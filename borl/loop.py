"""Algorithm 1 of the study: train on D0, then repeatedly collect with the frozen agent and retrain
on everything. The only place that knows the order of things.

A run lives in a directory and its progress is read back from it: D0 is complete once its marker
exists, an iteration's training once its checkpoint directory exists (written atomically), an
iteration is finished once its metrics file exists. `Run.execute` skips what is done and redoes
only what was interrupted, so a run killed at any moment resumes to the same result.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from borl.agent import Agent, check_observation
from borl.critics import CRITICS
from borl.data.episode import Episode, Lineage
from borl.data.store import EpisodeStore
from borl.eval.stats import success_rate
from borl.eval.video import write_episode_videos
from borl.files import write_atomic
from borl.logger import Logger
from borl.pool.ray_actors import ray_session
from borl.rollout.collector import Collector, EpisodeJob, episode_seed
from borl.rollout.demos import collect_demos
from borl.run_directory import GATE_SOURCES, RunDirectory, checkpoint_name
from borl.train import train_agent

# States of the deployed evaluation on which selection's use of the critic is measured each iteration.
SELECTION_STATES = 1024


@dataclass(frozen=True)
class Batch:
    """Episodes `source` 0..count-1 of an iteration: acting with extraction or not, with OU noise, their
    seeds drawn from `seed_stream` (default: the source and iteration; evaluations share one stream
    so that every iteration meets the same start states)."""

    source: str
    count: int
    extract: bool = True
    noise: float = 0.0
    seed_stream: tuple[str, int] | None = None


class Run(RunDirectory):
    """A run: its directory, and the algorithm that fills it."""

    def ensure_demos(self, logger: Logger) -> None:
        if (self.directory / "data" / "iter_000" / "COMPLETE").exists():
            return
        config = self.config
        if config.dataset:
            self._store_demos(self._read_dataset())
            return
        count = config.demos or self.task.spec.default_demos
        # Demonstrations get the task's own horizon: a shorter run horizon (quick mode's 80 steps) limits
        # the agent's episodes, and would cut off experts that need more steps (can, square: 90-165).
        demos, attempts = collect_demos(
            self.task,
            count,
            seed=config.seed,
            noise=config.demo_noise,
            logger=logger,
            workers=config.workers,
            backend=config.backend,
            ray_address=config.ray_address,
        )
        logger.message(f"D0: {count} scripted demonstrations in {attempts} attempts")
        self._store_demos(demos)

    def execute(self, logger: Logger) -> list[dict]:
        """Run (or finish) every iteration, reporting through `logger` (borl/logger.py run_logger);
        returns the metrics rows."""
        for store in (self.data, self.evals):
            store.remove_temporary()
        done = set(self.completed_iterations())
        todo = [i for i in range(self.config.iterations + 1) if i not in done]
        check_observation(self.config, self.task.spec.observation)
        if todo:
            with ray_session(self.config.backend, self.config.workers, self.config.ray_address):
                self.ensure_demos(logger)
                with Collector(self.config) as collector:
                    for iteration in todo:
                        self._iteration(iteration, collector, logger)
        else:
            # A kill between an iteration's metrics file and the csv leaves the csv behind: redo it.
            self._write_summaries()
        return self.metrics()

    def _iteration(self, iteration: int, collector: Collector, logger: Logger) -> None:
        timing_file = self.directory / "metrics" / f".{checkpoint_name(iteration)}.timing.json"
        timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
        timing_file.parent.mkdir(parents=True, exist_ok=True)

        def record(phase: str, seconds: float) -> None:
            timing[phase] = timing.get(phase, 0.0) + seconds
            write_atomic(timing_file, json.dumps(timing))

        if iteration > 0:
            start = time.perf_counter()
            self._collect(iteration, collector, logger)
            record("collect_seconds", time.perf_counter() - start)
        if not self.checkpoint(iteration).exists():
            info = self.train(iteration, logger)
            record("train_seconds", info["train_seconds"])
            timing["transitions"] = info["transitions"]
            write_atomic(timing_file, json.dumps(timing))
        if self.gated(iteration):
            start = time.perf_counter()
            self._gate(iteration, collector, logger)
            record("gate_seconds", time.perf_counter() - start)
        start = time.perf_counter()
        evals = self._evaluate(iteration, collector, logger)
        record("eval_seconds", time.perf_counter() - start)
        if self.config.videos:
            self.write_videos(iteration, evals["eval"][: self.config.videos], logger)
        rollouts = self.data.load(iteration, "rollout") if iteration > 0 else []
        eval_rate, eval_stderr = success_rate([e.success for e in evals["eval"]])
        plain_rate, plain_stderr = success_rate([e.success for e in evals.get("plain", [])])
        row = {
            "iteration": iteration,
            "eval_success_rate": eval_rate,
            "eval_stderr": eval_stderr,
            "eval_episodes": len(evals["eval"]),
            "policy_only_success_rate": plain_rate,
            "policy_only_stderr": plain_stderr,
            "rollout_success_rate": success_rate([e.success for e in rollouts])[0],
            "rollouts": len(rollouts),
            "env_steps": sum(len(e) for e in rollouts),
            "transitions": int(timing.get("transitions", 0)),
            "train_seconds": round(timing.get("train_seconds", 0.0), 2),
            "collect_seconds": round(timing.get("collect_seconds", 0.0), 2),
            "eval_seconds": round(timing.get("eval_seconds", 0.0), 2),
            "gate_seconds": round(timing.get("gate_seconds", 0.0), 2),
            **self._gate_row(iteration),
            **self._selection_stats(iteration, evals["eval"]),
        }
        self.record_metrics(iteration, row)
        logger.metrics(iteration, row)

    def write_videos(self, iteration: int, episodes: list[Episode], logger: Logger) -> list[Path]:
        """MP4s of `episodes` in DIR/videos/iter_K/, rendered from their stored states (before the
        metrics row that marks the iteration done, so a resumed run draws any it missed)."""
        env = self.task.make_env(horizon=self.config.horizon)
        try:
            return write_episode_videos(env, episodes, self.videos_directory(iteration), logger)
        finally:
            env.close()

    def train(self, iteration: int, logger: Logger | None = None) -> dict[str, float]:
        """Train iteration `iteration`'s agent on every episode up to it and save its checkpoint;
        returns the final losses and timing."""
        config = self.config
        episodes = [e for e in self.data.load(source=None) if e.lineage.iteration <= iteration]
        source = config.algorithm_class.policy_iteration(iteration)
        frozen = None if source == iteration else Agent.load(self.checkpoint(source), config, config.device)
        needs_samples = config.uses_critic and CRITICS[config.critic.kind].samples_needed(config.critic) > 0
        proposer = Agent.load(self.checkpoint(iteration - 1)) if needs_samples and iteration > 0 else None
        curves: list[dict] = []
        agent, info = train_agent(
            config,
            episodes,
            self.task.spec.obs_dim,
            self.task.spec.act_dim,
            seed=episode_seed(config.seed, "train", iteration, 0),
            frozen=frozen,
            description=f"iter {iteration} train",
            logger=logger,
            proposer=proposer,
            curves=curves,
            observation=self.task.spec.observation,
        )
        # Curves first: a kill between the two retrains (the checkpoint marks training as done).
        self.write_curves(iteration, curves)
        agent.save(self.checkpoint(iteration))
        if logger is not None:
            logger.curves(sum(self.training_steps(k) for k in range(iteration)), curves)
        return info

    def _gate(self, iteration: int, collector: Collector, logger: Logger) -> None:
        """Act extraction.gate_episodes episodes with and without extraction on the gate's own start
        states (stream "gate", this iteration), for `extracts` to decide on."""
        count, starts = self.config.extraction.gate_episodes, ("gate", iteration)
        batches = [
            Batch(GATE_SOURCES[0], count, True, seed_stream=starts),
            Batch(GATE_SOURCES[1], count, False, seed_stream=starts),
        ]
        self._run_batches(collector, self.evals, iteration, iteration, batches, logger)
        with_extraction, alone = self.gate_outcomes(iteration)
        verdict = "acts with extraction" if self.extracts(iteration) else "acts with the policy alone"
        logger.message(
            f"iter {iteration} gate: with extraction {sum(with_extraction)}/{count}, "
            f"policy alone {sum(alone)}/{count}: {verdict}"
        )

    def _gate_row(self, iteration: int) -> dict[str, float | int | str]:
        """The metrics row's record of how the agent acted: `extracted` (1/0; empty for an agent that
        has no implicit extraction) and the gate's success rates (empty without a gate)."""
        row: dict[str, float | int | str] = {"extracted": "", "gate_deployed": "", "gate_alone": ""}
        if self.config.extraction.at_rollout:
            row["extracted"] = int(self.extracts(iteration))
        if self.gated(iteration):
            with_extraction, alone = self.gate_outcomes(iteration)
            row["gate_deployed"] = success_rate(with_extraction)[0]
            row["gate_alone"] = success_rate(alone)[0]
        return row

    def _selection_stats(self, iteration: int, evals: list[Episode]) -> dict[str, float | str]:
        """On up to SELECTION_STATES states the deployed agent visited: how often implicit extraction
        acts with another candidate than the policy's first sample, by what min-Q margin, and the
        spread of the candidates' Q (empty values when the agent does not extract)."""
        if not self.extracts(iteration) or not evals:
            return {"moved_from_first": "", "q_margin": "", "q_spread": ""}
        starts = np.cumsum([0, *(len(e) for e in evals)])
        seed = episode_seed(self.config.seed, "selection", iteration, 0)
        picks = np.sort(np.random.default_rng(seed).permutation(starts[-1])[:SELECTION_STATES])
        which = np.searchsorted(starts, picks, "right") - 1
        rows = [(evals[k], t - starts[k]) for k, t in zip(which, picks, strict=True)]
        agent = Agent.load(self.checkpoint(iteration), self.config, self.config.device)
        low = np.stack([e.observations[t] for e, t in rows])
        images = np.stack([e.images[t] for e, t in rows]) if agent.observation.has_images else None
        stats = agent.selection_stats(agent.observation.pack(low, images), seed)
        return {key: round(value, 5) for key, value in stats.items()}

    def _run_batches(
        self,
        collector: Collector,
        store: EpisodeStore,
        iteration: int,
        checkpoint: int,
        batches: list[Batch],
        logger: Logger,
    ) -> dict[str, list[Episode]]:
        """Run the missing episodes of the batches in one pass of the workers (one batch's last long
        episodes overlap the next batch's first), storing each as it finishes; returns every batch."""
        jobs: list[EpisodeJob] = []
        successes: dict[str, list[bool]] = {}
        for batch in batches:
            present = store.indices(iteration, batch.source)
            stream = batch.seed_stream or (batch.source, iteration)
            jobs += [
                EpisodeJob(
                    Lineage(
                        batch.source,
                        iteration,
                        index,
                        checkpoint=checkpoint_name(checkpoint),
                        seed=episode_seed(self.config.seed, *stream, index),
                        noise=batch.noise,
                    ),
                    extract=batch.extract,
                )
                for index in range(batch.count)
                if index not in present
            ]
            successes[batch.source] = [e.success for e in store.iter_episodes(iteration, batch.source)]
        total = sum(batch.count for batch in batches)
        description = f"iter {iteration} {'+'.join(batch.source for batch in batches)}"
        initial = total - len(jobs)
        with logger.bar(total, description, "ep", initial) as bar:

            def on_episode(episode: Episode) -> None:
                store.append(episode)
                successes[episode.lineage.source].append(episode.success)
                bar.set_postfix_str(", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in successes.items()))
                bar.update()

            collector.run(self.checkpoint(checkpoint), jobs, on_episode)
        return {batch.source: store.load(iteration, batch.source) for batch in batches}

    def _collect(self, iteration: int, collector: Collector, logger: Logger) -> None:
        extract = self.extracts(iteration - 1)
        rollouts = Batch("rollout", self.config.rollouts, extract, noise=self.config.ou_sigma)
        self._run_batches(collector, self.data, iteration, iteration - 1, [rollouts], logger)

    def _evaluate(self, iteration: int, collector: Collector, logger: Logger) -> dict[str, list[Episode]]:
        """Evaluate as deployed (noise off); the same seeds every iteration, so iterations are paired.

        With implicit extraction, the same checkpoint also acts without it ("plain"): the simpler
        baseline, measured on the same starts in the same run. (AWR and no extraction already act with
        one plain policy sample, and so does an agent before extraction.from_iteration or one that
        failed its gate: its "plain" episodes are its "eval" ones.)
        """
        extracting = self.extracts(iteration)
        count, starts = self.config.eval_episodes_at(iteration), ("eval", 0)
        batches = [Batch("eval", count, extracting, seed_stream=starts)]
        if self.config.eval_baseline and extracting:
            batches.append(Batch("plain", count, False, seed_stream=starts))
        evals = self._run_batches(collector, self.evals, iteration, iteration, batches, logger)
        if self.config.eval_baseline and self.config.extraction.at_rollout and not extracting:
            evals["plain"] = evals["eval"]
        return evals
