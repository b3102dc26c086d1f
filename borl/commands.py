"""What each `borl` subcommand does, given its parsed arguments."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from borl.config import (
    AXIS_KEYS,
    PRESETS,
    as_assignments,
    axes_name,
    build_config,
    merge,
    parse_assignments,
    parse_settings,
    read_config_file,
    validate,
    with_preset,
)
from borl.errors import BorlError
from borl.files import ensure_writable_file
from borl.logger import run_logger
from borl.settings import settings_given

console = Console()


def tasks(args: argparse.Namespace) -> int:
    from borl.envs.registry import list_tasks

    table = Table(title="borl tasks")
    for column in ("task", "obs", "action", "horizon", "default D0", "description"):
        table.add_column(column)
    for task in list_tasks():
        s = task.spec
        table.add_row(
            s.name,
            str(s.obs_dim) + (f" + {len(s.cameras)} RGB {s.image_size}x{s.image_size}" if s.cameras else ""),
            str(s.act_dim),
            str(s.horizon),
            str(s.default_demos),
            s.description,
        )
    console.print(table)
    return 0


def demos(args: argparse.Namespace) -> int:
    from borl.envs.registry import get_task
    from borl.formats.robomimic import write_robomimic
    from borl.logger import Logger
    from borl.rollout.demos import collect_demos

    task = get_task(args.task)
    ensure_writable_file(args.out, "the demonstrations file")
    episodes, attempts = collect_demos(
        task,
        args.episodes,
        seed=args.seed,
        noise=args.noise,
        logger=Logger(),
        workers=args.workers,
        backend=args.backend,
        ray_address=args.ray_address,
    )
    write_robomimic(args.out, episodes, task.spec)
    steps = sum(len(e) for e in episodes)
    print(
        f"wrote {len(episodes)} successful demonstrations ({steps} steps) to {args.out} "
        f"in {attempts} attempts ({len(episodes) / attempts:.0%} expert success)"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from borl.loop import Run

    given = settings_given(args)
    if "dataset" in given:
        given["dataset"] = str(Path(given["dataset"]).resolve())
    flags = {"task": args.task, **parse_settings(given)}
    from_file = read_config_file(args.config) if args.config else {}
    config = build_config(args.algo, args.quick, from_file, flags, parse_assignments(args.set))
    _check_task_and_device(config)
    out = (
        args.out
        or Path("runs") / f"{config.task}-{config.algo}-seed{config.seed}{'-quick' if config.quick else ''}"
    )
    run = Run.create(out, config)
    console.print(f"run directory: [bold]{out}[/bold]")
    return _finish(run, quiet=args.quiet)


def resume(args: argparse.Namespace) -> int:
    from borl.loop import Run

    run = Run.open(args.dir)
    done = run.completed_iterations()
    console.print(f"resuming {args.dir}: {len(done)} of {run.config.iterations + 1} iterations done")
    return _finish(run, quiet=args.quiet)


def retrain(args: argparse.Namespace) -> int:
    from borl.loop import Run
    from borl.retrain import branch

    source = Run.open(args.dir)
    config = source.config
    if args.algo is not None:
        config = with_preset(config, args.algo)
    config = merge(config, parse_assignments(args.set))
    config = replace(config, algo=axes_name(config))
    validate(config)
    _check_task_and_device(config)
    run = branch(source, args.iteration, args.out, config)
    console.print(
        f"retraining iteration {args.iteration} of {args.dir} as {config.algo}: [bold]{args.out}[/bold]"
    )
    return _finish(run, quiet=args.quiet)


def _check_task_and_device(config) -> None:
    from borl.envs.registry import get_task

    get_task(config.task)
    if config.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise BorlError("--device cuda asked for, but PyTorch sees no CUDA device")


def _finish(run, quiet: bool) -> int:
    with run_logger(run.directory, run.config, progress=not quiet) as logger:
        rows = run.execute(logger)
    _summary(rows, run.directory)
    return 0


def _percent(value: float, stderr: float | None = None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.0%}" + (f" ± {stderr:.0%}" if stderr is not None and not math.isnan(stderr) else "")


def _summary(rows: list[dict], directory: Path) -> None:
    table = Table(title=f"{directory}")
    for column in (
        "iter",
        "eval success",
        "policy only",
        "rollout success",
        "rollouts",
        "train s",
        "collect s",
        "eval s",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["iteration"]),
            _percent(r["eval_success_rate"], r["eval_stderr"]),
            _percent(r["policy_only_success_rate"], r["policy_only_stderr"]),
            _percent(r["rollout_success_rate"]) if r["rollouts"] else "-",
            str(r["rollouts"]),
            f"{r['train_seconds']:.0f}",
            f"{r['collect_seconds']:.0f}",
            f"{r['eval_seconds']:.0f}",
        )
    console.print(table)
    console.print(f"metrics: {directory / 'metrics.csv'}   plot: {directory / 'plots' / 'success.png'}")


def eval(args: argparse.Namespace) -> int:  # noqa: A001 - the subcommand's name
    import json

    from borl.eval.stats import paired_difference, success_rate
    from borl.loop import Run

    run = Run.open(args.dir)
    overrides = parse_assignments(args.set)
    if set(overrides) - {"extraction"}:
        raise BorlError("borl eval --set changes only extraction.* (the checkpoint fixes the networks)")
    config = merge(run.config, overrides)
    validate(config)
    iterations = [i for i in range(run.config.iterations + 1) if run.checkpoint(i).exists()]
    if not iterations:
        raise BorlError(f"{args.dir} has no checkpoint yet")
    iteration = iterations[-1] if args.iteration is None else args.iteration
    if not run.checkpoint(iteration).exists():
        raise BorlError(f"{args.dir} has no checkpoint for iteration {iteration} (have {iterations})")
    x = config.extraction
    alone = args.no_extraction or not x.at_rollout
    if args.paired and alone:
        raise BorlError("--paired compares acting with and without implicit extraction: drop --no-extraction")
    # As deployed is as the run deployed this agent: alone before from_iteration or where its gate failed.
    as_run = Run(run.directory, config)
    extracts = not alone and as_run.extracts(iteration)
    if args.paired:  # deployed alone is the policy alone's episodes: acted once, reported twice
        modes = {"deployed": True, "policy_alone": False} if extracts else {"policy_alone": False}
    else:
        modes = {_mode(alone): extracts}
    outcomes, kept = _eval_outcomes(run, config, iteration, modes, args.episodes, args.seed, args.video)
    if args.paired and not extracts:
        outcomes = {"deployed": outcomes["policy_alone"], **outcomes}
    if args.video:
        _eval_videos(run, iteration, args.seed, kept, quiet=args.json)
    how = f"best of {x.candidates}" + (f", softmax temperature {x.temperature}" if x.temperature > 0 else "")
    if x.safety_k is not None:
        how += f", safe selection k={x.safety_k:g} margin={x.safety_margin:g}"
    if not alone and not extracts:
        how = f"as deployed, the policy alone: {_why_alone(as_run, iteration)}"
    result: dict = {
        "iteration": iteration,
        "episodes": args.episodes,
        "seed": args.seed,
        "extraction": how,
        "extracts": extracts,
    }
    for mode, successes in outcomes.items():
        rate, stderr = success_rate(successes)
        result[mode] = {"success_rate": rate, "stderr": stderr, "successes": [int(s) for s in successes]}
    if args.paired:
        difference, stderr = paired_difference(outcomes["policy_alone"], outcomes["deployed"])
        result["difference"] = {"mean": difference, "paired_stderr": stderr}
    if args.json:
        print(json.dumps(result))
        return 0
    for mode in outcomes:
        label = "policy alone" if mode == "policy_alone" else how
        print(
            f"iteration {iteration} ({label}): success "
            f"{_percent(result[mode]['success_rate'], result[mode]['stderr'])} over {args.episodes} episodes"
        )
    if args.paired:
        print(
            f"deployed - policy alone on the same {args.episodes} start states: "
            f"{difference * 100:+.1f} ± {stderr * 100:.1f} points (paired s.e.)"
        )
    return 0


def _eval_outcomes(
    run, config, iteration: int, modes: dict[str, bool], episodes: int, seed: int, keep: int = 0
) -> tuple[dict, dict]:
    """Each mode's successes (extract or not) on the same `episodes` start states drawn by `seed`,
    and each mode's first `keep` episodes.

    The agent acts on the run's `train.threads` torch threads, as in the run's own evaluation (one
    worker collects in this process): torch's default of every core ran 10x slower beside other work.
    """
    import torch

    from borl.data.episode import Lineage
    from borl.rollout.collector import Collector, EpisodeJob, episode_seed
    from borl.run_directory import checkpoint_name

    seeds = [episode_seed(seed, "eval", 0, i) for i in range(episodes)]
    outcomes: dict[str, list[bool]] = {}
    kept: dict[str, list] = {}
    torch.set_num_threads(config.train.threads)
    with Collector(config) as collector:
        for mode, extract in modes.items():
            jobs = [
                EpisodeJob(Lineage("eval", iteration, i, checkpoint_name(iteration), s), extract=extract)
                for i, s in enumerate(seeds)
            ]
            finished: dict[int, bool] = {}
            first: dict[int, object] = {}

            def record(episode, finished=finished, first=first) -> None:
                finished[episode.lineage.index] = episode.success
                if episode.lineage.index < keep:
                    first[episode.lineage.index] = episode

            collector.run(run.checkpoint(iteration), jobs, record)
            outcomes[mode] = [finished[i] for i in range(episodes)]
            kept[mode] = [first[i] for i in sorted(first)]
    return outcomes, kept


def _eval_videos(run, iteration: int, seed: int, kept: dict, quiet: bool) -> None:
    """Each mode's kept episodes as MP4s in DIR/videos/eval_iter_K_seedS/MODE/."""
    from borl.eval.video import write_episode_videos
    from borl.logger import Logger
    from borl.run_directory import checkpoint_name

    env = run.task.make_env(horizon=run.config.horizon)
    try:
        for mode, episodes in kept.items():
            directory = run.directory / "videos" / f"eval_{checkpoint_name(iteration)}_seed{seed}" / mode
            paths = write_episode_videos(env, episodes, directory, Logger(progress=not quiet))
            if not quiet:
                console.print(f"{len(paths)} videos ({mode}) in {directory}")
    finally:
        env.close()


def _why_alone(run, iteration: int) -> str:
    """Why the run deployed iteration `iteration`'s agent without extraction, and how to make it select."""
    if not run.config.extraction.extracts_at(iteration):
        why = f"before extraction.from_iteration={run.config.extraction.from_iteration}"
        override = f"extraction.from_iteration={iteration}"
    else:
        selected, alone = (f"{sum(s)}/{len(s)}" for s in run.gate_outcomes(iteration))
        why, override = f"its gate had {selected} with selection, {alone} alone", "extraction.gate_episodes=0"
    return f"{why} (--set {override} to select)"


def _mode(alone: bool) -> str:
    return "policy_alone" if alone else "deployed"


_GRID_FLAGS = ("tasks", "algos", "seeds", "iterations", "rollouts", "eval_episodes", "ou_sigma", "workers")
# The grid flags a --config file may stand for, each as make_grid takes it (a flag given wins).
_FILE_GRID_FLAGS = {"rollouts": str, "ou_sigma": str, "iterations": int, "eval_episodes": int, "workers": int}


def study(args: argparse.Namespace) -> int:
    from borl import study as studies

    if args.resume:
        given = [f"--{name.replace('_', '-')}" for name in _GRID_FLAGS if getattr(args, name) is not None]
        given += ["--quick"] * args.quick + ["--set"] * bool(args.set) + ["--config"] * bool(args.config)
        if given:
            raise BorlError(f"--resume takes the grid from {args.resume}/study.yaml: drop {', '.join(given)}")
        directory = args.resume
        grid = studies.open_study(directory)
    elif args.out is None:
        raise BorlError("borl study needs --out DIR (a new study, or the same command again to resume it)")
    else:
        directory = args.out
        flags, overrides = study_settings(args)
        grid = studies.make_grid(**flags, quick=args.quick, overrides=overrides)
        grid = studies.open_study(directory, grid)
    if args.backend == "ray":
        import os

        from borl.study_ray import RayLauncher

        cpus = grid.workers or build_config("recipe", grid.quick).workers
        launcher = RayLauncher(cpus, args.ray_address, local_cpus=os.cpu_count() or 2)
        try:
            parallel = args.parallel or len(grid.points())
            failed = studies.run_study(directory, grid, parallel, launch=launcher)
        finally:
            launcher.close()
    else:
        failed = studies.run_study(directory, grid, args.parallel or studies.default_parallel(grid))
    _study_report(directory, grid)
    if failed:
        raise BorlError(
            f"{len(failed)} of {len(grid.points())} runs did not finish (see {directory / 'logs'}); "
            f"`borl study --resume {directory}` retries them"
        )
    return 0


def study_settings(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """make_grid's grid flags and `--set` overrides for a new study: a --config file's keys first.

    The file's grid keys (rollouts, ou_sigma, iterations, eval_episodes, workers) stand for the
    flags the command leaves out; its other keys come before --set. A config's axes (algorithm,
    policy class, extraction) name one preset: the study's, unless --algos names the presets, whose
    axes then replace the file's."""
    flags = {name: getattr(args, name) for name in _GRID_FLAGS}
    if args.config is None:
        return flags, list(args.set)
    data = read_config_file(args.config)
    from_file = as_assignments(data)
    axes = [name for name in AXIS_KEYS if name in from_file]
    if axes and args.algos is None:
        flags["algos"] = axes_name(build_config("recipe", False, data))
        if flags["algos"] not in PRESETS:
            raise BorlError(
                f"{args.config}: its axes ({flags['algos']}) are no preset: name the presets with --algos"
            )
    elif axes:
        console.print(f"{args.config}: {', '.join(axes)} left to each preset of --algos")
    for name, parse in _FILE_GRID_FLAGS.items():
        if name in from_file and flags[name] is None:
            flags[name] = parse(from_file[name])
    kept = set(AXIS_KEYS) | set(_FILE_GRID_FLAGS)
    settings = [f"{name}={text}" for name, text in from_file.items() if name not in kept]
    return flags, settings + list(args.set)


def _study_report(directory: Path, grid) -> None:
    """Write the study's summary tables and figures, and print each method's first and last iteration."""
    from borl import study as studies

    _, table, paired = studies.summarize(directory, grid)
    paths = studies.draw(directory, grid, table)
    summary = Table(title=f"{directory}: evaluation success over seeds (mean ± s.e., bootstrap 95% CI)")
    for column in ("task", "preset", "M", "OU σ", "seeds", "iteration 0", "final", "final 95% CI"):
        summary.add_column(column, justify="right")
    groups: dict[tuple, list[dict]] = {}
    for row in table:
        groups.setdefault((row["task"], row["preset"], row["rollouts"], row["ou_sigma"]), []).append(row)
    for (task, preset, rollouts, ou_sigma), rows in groups.items():
        first, last = rows[0], rows[-1]
        summary.add_row(
            task,
            preset,
            str(rollouts),
            f"{ou_sigma:g}",
            str(last["seeds"]),
            _percent(first["mean"], first["stderr"]),
            f"{_percent(last['mean'], last['stderr'])} (iter {last['iteration']})",
            f"{last['ci_low']:.0%}-{last['ci_high']:.0%}",
        )
    console.print(summary)
    _paired_report(paired)
    console.print(
        f"summary: {directory / 'summary.csv'}, {directory / 'summary_by_method.csv'}, "
        f"{directory / 'summary_paired.csv'}"
    )
    console.print(f"figures: {len(paths)} in {directory / 'figures'}")


def _paired_report(paired: list[dict]) -> None:
    """Print the last iteration's paired differences over seeds (DIR/summary_paired.csv has them all)."""
    from borl.study_paired import DEPLOYED_VS_ALONE

    pooled = [r for r in paired if r["seed"] == "all"]
    last = max((r["iteration"] for r in pooled), default=None)
    rows = [r for r in pooled if r["iteration"] == last or r["comparison"] != DEPLOYED_VS_ALONE]
    if not rows:
        return
    table = Table(title="paired on the same start states, over seeds (points ± s.e. from the episodes)")
    for column in ("task", "M", "OU σ", "comparison", "points", "pairs", "s.e. over seeds"):
        table.add_column(column, justify="right")
    for row in rows:
        side = f"{row['preset']} iter {row['iteration']}"
        versus = f"{row['versus']} iter {row['versus_iteration']}"
        if row["comparison"] == DEPLOYED_VS_ALONE:
            side, versus = f"{side} deployed", "its policy alone"
        seeds = "–" if math.isnan(row["stderr_seeds"]) else f"{row['stderr_seeds'] * 100:.1f}"
        table.add_row(
            row["task"],
            str(row["rollouts"]),
            f"{row['ou_sigma']:g}",
            f"{side} − {versus}",
            f"{row['difference'] * 100:+.1f} ± {row['stderr'] * 100:.1f}",
            str(row["episodes"]),
            seeds,
        )
    console.print(table)


def plot(args: argparse.Namespace) -> int:
    from borl import study as studies
    from borl.loop import Run

    for directory in args.dirs:
        if studies.is_study(directory):
            _study_report(directory, studies.open_study(directory))
            continue
        for path in Run.open(directory).plot():
            print(f"wrote {path}")
    return 0


def video(args: argparse.Namespace) -> int:
    from borl.logger import Logger
    from borl.loop import Run

    run = Run.open(args.dir)
    done = run.completed_iterations()
    if not done:
        raise BorlError(f"{args.dir} has no finished iteration yet")
    iteration = done[-1] if args.iteration is None else args.iteration
    if iteration not in done:
        raise BorlError(f"{args.dir} has not finished iteration {iteration} (finished: {done})")
    store = run.data if args.source == "rollout" else run.evals
    episodes = store.load(iteration, args.source)[: args.count]
    if not episodes:
        raise BorlError(f"iteration {iteration} of {args.dir} has no {args.source} episodes")
    for path in run.write_videos(iteration, episodes, Logger(progress=not args.quiet)):
        print(f"wrote {path}")
    return 0


def bench(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from borl import bench as benchmarks

    config = build_config("recipe", False, parse_assignments(args.set))
    _check_task_and_device(config)
    if args.what == "sim":
        from borl.bench_sim import step_breakdown

        result = step_breakdown(args.task, steps=args.steps)
    elif args.what == "train":
        result = benchmarks.bench_train(config, threads=args.threads or 2)
    elif args.what == "sample":
        result = benchmarks.bench_sample(config, envs=args.envs, threads=args.threads or 1)
    elif args.what == "serve":
        with tempfile.TemporaryDirectory() as tmp:
            clients = [int(c) for c in args.clients.split(",")] if args.clients else [1, 4]
            result = benchmarks.bench_serve(config, Path(tmp), clients, args.actions, args.threads or 1)
    elif args.what == "memory":
        with tempfile.TemporaryDirectory() as tmp:
            result = benchmarks.bench_memory(args.transitions, Path(tmp))
    else:
        try:
            workers = [int(w) for w in args.workers.split(",")]
        except ValueError:
            raise BorlError(f"--workers needs numbers like 1,2 (got '{args.workers}')") from None
        if min(workers) < 1:
            raise BorlError("--workers must be at least 1")
        with tempfile.TemporaryDirectory() as tmp:
            result = benchmarks.bench_rollout(config, workers, args.episodes, Path(tmp))
    if args.json:
        print(json.dumps(result))
        return 0
    table = Table(title=f"borl bench {args.what}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key == "per_workers":
            for row in value:
                w = row["workers"]
                table.add_row(f"W={w} collection steps/s", f"{row['steps_per_second']:.1f}")
                table.add_row(f"W={w} limit steps/s", f"{row['limit']:.1f}")
                table.add_row(f"W={w} ratio", f"{row['ratio']:.2f}")
        else:
            table.add_row(key, f"{value:.3g}" if isinstance(value, float) else str(value))
    console.print(table)
    return 0


def train(args: argparse.Namespace) -> int:
    from borl.loop import Run
    from borl.robot.ingest import check_without_simulator, train_next

    if (args.dir / "config.yaml").exists():
        if args.task or args.dataset:
            raise BorlError(
                f"{args.dir} already holds a run: `borl train {args.dir}` trains its next iteration"
            )
        run = Run.open(args.dir)
        check_without_simulator(run.config)
    else:
        if not (args.task and args.dataset):
            raise BorlError(f"{args.dir} holds no run: start one with --task TASK --dataset DEMOS.hdf5")
        flags = {"task": args.task, "dataset": str(Path(args.dataset).resolve()), "demos": args.demos}
        config = build_config(args.algo, args.quick, flags, {"iterations": 0}, parse_assignments(args.set))
        _check_task_and_device(config)
        check_without_simulator(config)
        run = Run.create(args.dir, config)
    with run_logger(run.directory, run.config, progress=not args.quiet) as logger:
        row = train_next(run, logger)
    console.print(
        f"iteration {row['iteration']} trained on {row['transitions']} transitions in "
        f"{row['train_seconds']:.0f} s: {args.dir / 'checkpoints' / row['checkpoint']} "
        f"(serve it: `borl serve {args.dir}`)"
    )
    return 0


def serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import os

    from borl.robot.policy import AgentSource
    from borl.robot.server import PolicyServer, ServerSettings

    token = args.token or os.environ.get("BORL_SERVE_TOKEN")
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        console.print(
            f"[yellow]serving on {args.host} without a token: anyone who can reach it can act[/yellow]"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)  # not every health check and handshake
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        token=token,
        max_clients=args.max_clients,
        max_message_bytes=args.max_message_bytes,
        ou_sigma=args.ou_sigma,
        threads=args.threads,
        follow=args.follow,
        max_batch=args.max_batch,
    )
    server = PolicyServer(AgentSource(args.dir, args.iteration), settings)
    asyncio.run(server.serve())
    return 0


def drive(args: argparse.Namespace) -> int:
    import os

    from borl.robot.client import LocalPolicy, PolicyClient
    from borl.robot.drive import drive as drive_loop
    from borl.robot.recorder import EpisodeRecorder
    from borl.robot.sim import make_robot

    if args.server is None and args.dir is None:
        raise BorlError("drive needs a run directory (to act in-process) or --server ws://HOST:PORT")
    robot = make_robot(args.robot, seed=args.seed, horizon=args.horizon)
    token = args.token or os.environ.get("BORL_SERVE_TOKEN")
    policy = PolicyClient(args.server, token) if args.server else LocalPolicy(args.dir, args.iteration)
    spec = policy.describe()
    recorder = EpisodeRecorder(args.out, spec["task"], robot.spec.name)

    def on_episode(index: int, success: bool, steps: int) -> None:
        console.print(
            f"episode {index + 1}/{args.episodes}: {'success' if success else 'failure'} in {steps} steps"
        )

    try:
        report = drive_loop(robot, policy, args.episodes, recorder, args.rate, args.seed, on_episode)
    finally:
        policy.close()
    console.print(f"{report.summary()}; recorded in [bold]{args.out}[/bold]")
    return 0


def ingest(args: argparse.Namespace) -> int:
    from borl.loop import Run
    from borl.robot.ingest import ingest as ingest_files

    run = Run.open(args.dir)
    report = ingest_files(run, args.files, args.source)
    console.print(
        f"iteration {report.iteration}: {report.added} episodes added ({report.successes} successful), "
        f"{report.skipped} already in the run; train it with `borl train {args.dir}`"
    )
    return 0
