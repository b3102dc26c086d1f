"""A run directory: where a run's config, data, checkpoints, metrics, curves, plots and videos live,
the files that record how far it got, and how each iteration's agent was deployed (with implicit
extraction or not, as its config and its gate's stored episodes decide). It knows nothing of the
algorithm (borl/loop.py)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self

from tqdm import tqdm

from borl.config import RunConfig, load_config, save_config
from borl.data.episode import Episode, Lineage
from borl.data.store import EpisodeStore
from borl.envs.registry import Task, get_task
from borl.errors import BorlError
from borl.eval.plots import plot_success, plot_training_curves
from borl.files import atomic_path, ensure_writable_directory, write_atomic
from borl.formats import read_dataset

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
    "gate_seconds",
    "extracted",
    "gate_deployed",
    "gate_alone",
    "moved_from_first",
    "q_margin",
    "q_spread",
]

# The evaluation store's sources of the gate's episodes: with extraction, and with the policy alone.
GATE_SOURCES = ("gate", "gate_plain")


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:03d}"


@dataclass
class RunDirectory:
    """A run directory and its resolved config: the paths, and reading and writing what is in them."""

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

    def curves_file(self, iteration: int) -> Path:
        return self.directory / "curves" / f"{checkpoint_name(iteration)}.csv"

    def videos_directory(self, iteration: int) -> Path:
        return self.directory / "videos" / checkpoint_name(iteration)

    @classmethod
    def create(cls, directory: Path, config: RunConfig) -> Self:
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
    def open(cls, directory: Path) -> Self:
        if not (directory / "config.yaml").exists():
            raise BorlError(f"{directory} is not a run directory (no config.yaml)")
        return cls(directory, load_config(directory / "config.yaml"))

    def _read_dataset(self) -> list[Episode]:
        episodes = read_dataset(Path(self.config.dataset), self.task.spec)
        used = self.config.demos
        if used is not None and used < len(episodes):
            why = "quick mode's D0 size" if self.config.quick else "the run's D0 size"
            tqdm.write(  # before any logger: a run's config is checked, and D0 read, at its creation
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

    def completed_iterations(self) -> list[int]:
        return [i for i in range(self.config.iterations + 1) if self.metrics_file(i).exists()]

    def record_metrics(self, iteration: int, row: dict) -> None:
        """Finish an iteration: its metrics file (the mark that it is done), metrics.csv and the plot."""
        self.metrics_file(iteration).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.metrics_file(iteration), json.dumps(row))
        self._write_summaries()

    def write_curves(self, iteration: int, curves: list[dict]) -> None:
        """DIR/curves/iter_K.csv: one row per logged step and phase (critic, policy), its losses."""
        path = self.curves_file(iteration)
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = list(dict.fromkeys(key for row in curves for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(curves)
        write_atomic(path, buffer.getvalue())

    def training_steps(self, iteration: int) -> int:
        """The updates of iteration K's longest training phase, from its curves (whose last row per
        phase is its last step); 0 where it has none."""
        path = self.curves_file(iteration)
        if not path.exists():
            return 0
        with path.open(newline="") as file:
            return 1 + max((int(row["step"]) for row in csv.DictReader(file)), default=-1)

    def extracts(self, iteration: int) -> bool:
        """Whether iteration `iteration`'s agent acts with implicit extraction, in its rollouts and as
        deployed: from extraction.from_iteration on and, with extraction.gate_episodes, only where it
        succeeded at least as often with extraction as without on the gate's episodes."""
        if not self.gated(iteration):
            return self.config.extraction.extracts_at(iteration)
        finished = self._finished_gate(iteration)
        if finished is None:
            raise BorlError(f"iteration {iteration}'s gate has not finished: resume the run")
        with_extraction, alone = finished
        return sum(with_extraction) >= sum(alone)

    def gated(self, iteration: int) -> bool:
        """Whether iteration `iteration`'s agent passes a gate before it deploys extraction."""
        return self.config.extraction.gate_episodes > 0 and self.config.extraction.extracts_at(iteration)

    def gate_pending(self, iteration: int) -> bool:
        """Whether iteration `iteration`'s agent has a gate still to finish (it has not deployed yet)."""
        return self.gated(iteration) and self._finished_gate(iteration) is None

    def _finished_gate(self, iteration: int) -> tuple[list[bool], list[bool]] | None:
        """The gate's outcomes once all its episodes have run; None before."""
        outcomes = self.gate_outcomes(iteration)
        return outcomes if min(map(len, outcomes)) >= self.config.extraction.gate_episodes else None

    def gate_outcomes(self, iteration: int) -> tuple[list[bool], list[bool]]:
        """The gate's successes of iteration `iteration`'s agent with and without extraction, paired by
        start state (as many as have run)."""
        with_extraction = self.evals.outcomes(iteration, GATE_SOURCES[0])
        alone = self.evals.outcomes(iteration, GATE_SOURCES[1])
        shared = sorted(with_extraction.keys() & alone.keys())
        return [with_extraction[i] for i in shared], [alone[i] for i in shared]

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

    def title(self) -> str:
        c = self.config
        return f"{c.task} / {c.algo}: M={c.rollouts} rollouts per iteration, seed {c.seed}"
