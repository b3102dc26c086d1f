"""Algorithm 1 of the study: train on D0, then repeatedly collect with the frozen agent and retrain
on everything. The only place that knows the order of things.

A run lives in a directory and its progress is read back from it: D0 is complete once its marker
exists, an iteration's training once its checkpoint directory exists (written atomically), an
iteration is finished once its metrics file exists. `Run.execute` skips what is done and redoes
only what was interrupted, so a run killed at any moment resumes to the same result.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from borl.agent import Agent
from borl.config import RunConfig, load_config, save_config
from borl.critics import CRITICS
from borl.data.episode import Episode, Lineage
from borl.data.store import EpisodeStore
from borl.envs.registry import Task, get_task
from borl.errors import BorlError
from borl.eval.plots import plot_success, plot_training_curves
from borl.eval.stats import success_rate
from borl.eval.video import write_episode_videos
from borl.files import atomic_path, ensure_writable_directory, write_atomic
from borl.formats import read_dataset
from borl.rollout.backends import AnyCollector, open_collector
from borl.rollout.collector import EpisodeJob, episode_seed
from borl.rollout.demos import collect_demos
from borl.rollout.ray_backend import ray_session
from borl.train import train_agent

METRIC_COLUMNS = [
    "iteration",
    "eval_success_rate",
    "eval_stderr",
    "eval_episodes",
    "policy_only_success_rate",
    "policy_only_stderr",
    "rollout_success_rate",
    "rollouts",
    "env_steps",
    "transitions",
    "train_seconds",
    "collect_seconds",
    "eval_seconds",
    "moved_from_first",
    "q_margin",
    "q_spread",
]

# States of the deployed evaluation on which selection's use of the critic is measured each iteration.
SELECTION_STATES = 1024


# Settings that decide which episodes a run holds; a retraining (Run.branch) must keep them.
DATA_KEYS = ("task", "dataset", "demos", "demo_noise", "horizon", "rollouts", "ou_sigma", "ou_theta")


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


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:03d}"


@dataclass
class Run:
    """A run directory and its resolved config."""

    directory: Path
    config: RunConfig

    @property
    def task(self) -> Task:
        return get_task(self.config.task)

    @property
    def data(self) -> EpisodeStore:
        return EpisodeStore(self.directory / "data")

    @property
    def evals(self) -> EpisodeStore:
        return EpisodeStore(self.directory / "eval")

    def checkpoint(self, iteration: int) -> Path:
        return self.directory / "checkpoints" / checkpoint_name(iteration)

    def metrics_file(self, iteration: int) -> Path:
        return self.directory / "metrics" / f"{checkpoint_name(iteration)}.json"

    @classmethod
    def create(cls, directory: Path, config: RunConfig) -> Run:
        """Start a new run; D0 from a dataset is read and checked before anything is written."""
        run = cls(directory, config)
        demos = run._read_dataset() if config.dataset else None
        if (directory / "config.yaml").exists():
            raise BorlError(
                f"{directory} already holds a run: use `borl resume {directory}` or another --out"
            )
        ensure_writable_directory(directory, "the run directory")
        save_config(config, directory / "config.yaml")
        if demos is not None:
            run._store_demos(demos)
        return run

    @classmethod
    def open(cls, directory: Path) -> Run:
        if not (directory / "config.yaml").exists():
            raise BorlError(f"{directory} is not a run directory (no config.yaml)")
        return cls(directory, load_config(directory / "config.yaml"))

    @classmethod
    def branch(cls, source: Run, iteration: int, directory: Path, config: RunConfig) -> Run:
        """A new run holding `source`'s episodes up to `iteration` and its results before it, so that
        executing it retrains and evaluates iteration `iteration` alone under `config`, on exactly the
        same data: an ablation with everything else held fixed.

        Settings that define the data (task, D0, horizon, rollouts, noise) must be the source's.
        """
        if iteration not in source.completed_iterations():
            done = source.completed_iterations()
            raise BorlError(f"{source.directory} has not completed iteration {iteration} (done: {done})")
        for key in DATA_KEYS:
            if getattr(config, key) != getattr(source.config, key):
                raise BorlError(f"{key} defines the data: a retraining keeps the source run's")
        if directory.is_dir() and any(directory.iterdir()):
            raise BorlError(f"{directory} exists and is not empty: choose another --out")
        ensure_writable_directory(directory, "the retraining's run directory")
        for earlier in range(iteration + 1):
            name = checkpoint_name(earlier)
            shutil.copytree(source.directory / "data" / name, directory / "data" / name)
            if earlier < iteration:
                shutil.copytree(source.checkpoint(earlier), directory / "checkpoints" / name)
                shutil.copytree(source.directory / "eval" / name, directory / "eval" / name)
                (directory / "metrics").mkdir(exist_ok=True)
                shutil.copy2(source.metrics_file(earlier), directory / "metrics" / f"{name}.json")
        run = cls(directory, replace(config, iterations=iteration))
        save_config(run.config, directory / "config.yaml")
        return run

    def _read_dataset(self) -> list[Episode]:
        episodes = read_dataset(Path(self.config.dataset), self.task.spec)
        used = self.config.demos
        if used is not None and used < len(episodes):
            why = "quick mode's D0 size" if self.config.quick else "the run's D0 size"
            tqdm.write(
                f"D0: using the first {used} of the {len(episodes)} episodes in {self.config.dataset} "
                f"(--demos {used}, {why}; --demos {len(episodes)} uses them all)"
            )
            episodes = episodes[:used]
        return episodes

    def _store_demos(self, demos: list[Episode]) -> None:
        store = self.data
        present = store.indices(0, "demo")
        for index, episode in enumerate(demos):
            if index not in present:
                lineage = Lineage("demo", 0, index, seed=episode.lineage.seed, noise=episode.lineage.noise)
                store.append(replace(episode, lineage=lineage))
        write_atomic(self.directory / "data" / "iter_000" / "COMPLETE", f"{len(demos)}\n")

    def ensure_demos(self, progress: bool) -> None:
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
            progress=progress,
            workers=config.workers,
            backend=config.backend,
            ray_address=config.ray_address,
        )
        tqdm.write(f"D0: {count} scripted demonstrations in {attempts} attempts")
        self._store_demos(demos)

    def completed_iterations(self) -> list[int]:
        return [i for i in range(self.config.iterations + 1) if self.metrics_file(i).exists()]

    def execute(self, progress: bool = True) -> list[dict]:
        """Run (or finish) every iteration; returns the metrics rows."""
        for store in (self.data, self.evals):
            store.remove_temporary()
        done = set(self.completed_iterations())
        todo = [i for i in range(self.config.iterations + 1) if i not in done]
        if todo:
            with ray_session(self.config):
                self.ensure_demos(progress)
                with open_collector(self.config) as collector:
                    for iteration in todo:
                        self._iteration(iteration, collector, progress)
        else:
            # A kill between an iteration's metrics file and the csv leaves the csv behind: redo it.
            self._write_summaries()
        return self.metrics()

    def _iteration(self, iteration: int, collector: AnyCollector, progress: bool) -> None:
        timing_file = self.directory / "metrics" / f".{checkpoint_name(iteration)}.timing.json"
        timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
        timing_file.parent.mkdir(parents=True, exist_ok=True)

        def record(phase: str, seconds: float) -> None:
            timing[phase] = timing.get(phase, 0.0) + seconds
            write_atomic(timing_file, json.dumps(timing))

        if iteration > 0:
            start = time.perf_counter()
            self._collect(iteration, collector, progress)
            record("collect_seconds", time.perf_counter() - start)
        if not self.checkpoint(iteration).exists():
            info = self.train(iteration, progress)
            record("train_seconds", info["train_seconds"])
            timing["transitions"] = info["transitions"]
            write_atomic(timing_file, json.dumps(timing))
        start = time.perf_counter()
        evals = self._evaluate(iteration, collector, progress)
        record("eval_seconds", time.perf_counter() - start)
        if self.config.videos:
            self.write_videos(iteration, evals["eval"][: self.config.videos], progress)
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
            **self._selection_stats(iteration, evals["eval"]),
        }
        self.record_metrics(iteration, row)

    def videos_directory(self, iteration: int) -> Path:
        return self.directory / "videos" / checkpoint_name(iteration)

    def write_videos(self, iteration: int, episodes: list[Episode], progress: bool) -> list[Path]:
        """MP4s of `episodes` in DIR/videos/iter_K/, rendered from their stored states (before the
        metrics row that marks the iteration done, so a resumed run draws any it missed)."""
        env = self.task.make_env(horizon=self.config.horizon)
        try:
            return write_episode_videos(env, episodes, self.videos_directory(iteration), progress=progress)
        finally:
            env.close()

    def record_metrics(self, iteration: int, row: dict) -> None:
        """Finish an iteration: its metrics file (the mark that it is done), metrics.csv and the plot."""
        self.metrics_file(iteration).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.metrics_file(iteration), json.dumps(row))
        self._write_summaries()

    def train(self, iteration: int, progress: bool) -> dict[str, float]:
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
            progress=progress,
            proposer=proposer,
            curves=curves,
        )
        # Curves first: a kill between the two retrains (the checkpoint marks training as done).
        self._write_curves(iteration, curves)
        agent.save(self.checkpoint(iteration))
        return info

    def curves_file(self, iteration: int) -> Path:
        return self.directory / "curves" / f"{checkpoint_name(iteration)}.csv"

    def _write_curves(self, iteration: int, curves: list[dict]) -> None:
        """DIR/curves/iter_K.csv: one row per logged step and phase (critic, policy), its losses."""
        path = self.curves_file(iteration)
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = list(dict.fromkeys(key for row in curves for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(curves)
        write_atomic(path, buffer.getvalue())

    def _selection_stats(self, iteration: int, evals: list[Episode]) -> dict[str, float | str]:
        """On up to SELECTION_STATES states the deployed agent visited: how often implicit extraction
        acts with another candidate than the policy's first sample, by what min-Q margin, and the
        spread of the candidates' Q (empty values when the agent does not extract)."""
        if not self.config.extraction.extracts_at(iteration) or not evals:
            return {"moved_from_first": "", "q_margin": "", "q_spread": ""}
        states = np.concatenate([e.observations[:-1] for e in evals])
        seed = episode_seed(self.config.seed, "selection", iteration, 0)
        picks = np.random.default_rng(seed).permutation(len(states))[:SELECTION_STATES]
        agent = Agent.load(self.checkpoint(iteration), self.config, self.config.device)
        stats = agent.selection_stats(states[np.sort(picks)], seed)
        return {key: round(value, 5) for key, value in stats.items()}

    def title(self) -> str:
        c = self.config
        return f"{c.task} / {c.algo}: M={c.rollouts} rollouts per iteration, seed {c.seed}"

    def _run_batches(
        self,
        collector: AnyCollector,
        store: EpisodeStore,
        iteration: int,
        checkpoint: int,
        batches: list[Batch],
        progress: bool,
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
        with tqdm(total=total, initial=initial, desc=description, disable=not progress, unit="ep") as bar:

            def on_episode(episode: Episode) -> None:
                store.append(episode)
                successes[episode.lineage.source].append(episode.success)
                bar.set_postfix_str(", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in successes.items()))
                bar.update()

            collector.run(self.checkpoint(checkpoint), jobs, on_episode)
        return {batch.source: store.load(iteration, batch.source) for batch in batches}

    def _collect(self, iteration: int, collector: AnyCollector, progress: bool) -> None:
        extract = self.config.extraction.extracts_at(iteration - 1)
        rollouts = Batch("rollout", self.config.rollouts, extract, noise=self.config.ou_sigma)
        self._run_batches(collector, self.data, iteration, iteration - 1, [rollouts], progress)

    def _evaluate(self, iteration: int, collector: AnyCollector, progress: bool) -> dict[str, list[Episode]]:
        """Evaluate as deployed (noise off); the same seeds every iteration, so iterations are paired.

        With implicit extraction, the same checkpoint also acts without it ("plain"): the simpler
        baseline, measured on the same starts in the same run. (AWR and no extraction already act with
        one plain policy sample, and so does an agent before extraction.from_iteration: its "plain"
        episodes are its "eval" ones.)
        """
        extracting = self.config.extraction.extracts_at(iteration)
        count, starts = self.config.eval_episodes_at(iteration), ("eval", 0)
        batches = [Batch("eval", count, extracting, seed_stream=starts)]
        if self.config.eval_baseline and extracting:
            batches.append(Batch("plain", count, False, seed_stream=starts))
        evals = self._run_batches(collector, self.evals, iteration, iteration, batches, progress)
        if self.config.eval_baseline and self.config.extraction.at_rollout and not extracting:
            evals["plain"] = evals["eval"]
        return evals

    def metrics(self) -> list[dict]:
        return [json.loads(self.metrics_file(i).read_text()) for i in self.completed_iterations()]

    def _write_summaries(self) -> None:
        """metrics.csv, plots/success.png and plots/training.png from the per-iteration files."""
        self._write_metrics_csv()
        self.plot()

    def plot(self) -> list[Path]:
        """Draw the run's figures: success per iteration, and the training curves where recorded."""
        paths = [plot_success(self.metrics(), self.directory / "plots" / "success.png", title=self.title())]
        curves = sorted((self.directory / "curves").glob("iter_*.csv"))
        if curves:
            paths.append(
                plot_training_curves(curves, self.directory / "plots" / "training.png", self.title())
            )
        return paths

    def _write_metrics_csv(self) -> None:
        with atomic_path(self.directory / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(self.metrics())
