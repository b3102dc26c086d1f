"""The `borl` command: parse arguments, build a config, call the library. Errors are one line."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from borl.errors import BorlError


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} (got {value})")
        return value

    return parse


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (got {text})")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="borl", description="Batch online RL for robot manipulation.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("tasks", help="list tasks")

    demos = sub.add_parser("demos", help="scripted-expert demonstrations in robomimic HDF5 layout")
    demos.add_argument("task")
    demos.add_argument("--episodes", type=_count(1), required=True, help="successful demos to keep")
    demos.add_argument("--out", type=Path, required=True)
    demos.add_argument("--seed", type=int, default=0)
    demos.add_argument("--noise", type=_nonnegative_float, help="expert action noise (task default if unset)")
    demos.add_argument("--workers", type=_count(1), default=2, help="processes running the expert")
    demos.add_argument(
        "--backend", choices=["local", "ray"], default="local", help="local processes or Ray actors"
    )
    demos.add_argument("--ray-address", help="Ray cluster to join (default: start a local Ray)")

    run = sub.add_parser(
        "run",
        help="batch online RL: D0, then iterations of collect and retrain",
        allow_abbrev=False,  # --extraction and --extraction.kind are two spellings of one key
    )
    run.add_argument("task")
    run.add_argument(
        "--algo",
        default="recipe",
        help="preset: recipe, il, filtered-il, filtered-recipe, awr, gaussian-awr, gaussian-implicit, "
        "steering (settings below override it)",
    )
    run.add_argument("--quick", action="store_true", help="the smallest settings: a one-minute check")
    run.add_argument("--out", type=Path, help="run directory (default: runs/TASK-ALGO-seedS)")
    run.add_argument(
        "--config",
        type=Path,
        help="a YAML file of config keys (any subset; a run's DIR/config.yaml is one), applied after the "
        "preset and before the flags and --set",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. --set train.policy_steps=5000 (the same as --train.policy-steps 5000)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_settings(run)

    resume = sub.add_parser("resume", help="continue an interrupted run where it stopped")
    resume.add_argument("dir", type=Path)
    resume.add_argument("--quiet", action="store_true")

    retrain = sub.add_parser(
        "retrain",
        help="retrain one iteration of a finished run on the same data with other settings (an ablation)",
    )
    retrain.add_argument("dir", type=Path, help="the source run")
    retrain.add_argument("--iteration", type=_count(0), required=True)
    retrain.add_argument("--out", type=Path, required=True, help="the new run directory")
    retrain.add_argument("--algo", help="another preset for the retraining, e.g. filtered-il")
    retrain.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any setting but those that define the data, e.g. --set train.policy_steps=10000",
    )
    retrain.add_argument("--quiet", action="store_true")

    evaluate = sub.add_parser("eval", help="evaluate a run's checkpoint")
    evaluate.add_argument("dir", type=Path)
    evaluate.add_argument("--iteration", type=_count(0), help="default: the latest")
    evaluate.add_argument("--episodes", type=_count(1), default=50)
    evaluate.add_argument(
        "--seed",
        type=int,
        default=12345,
        help="draws the start states: the default gives new ones; the run's own seed (with as many "
        "episodes) gives the starts of its evaluation",
    )
    evaluate.add_argument(
        "--no-extraction", action="store_true", help="act with one policy sample, without the critic"
    )
    evaluate.add_argument(
        "--paired",
        action="store_true",
        help="act as deployed and with the policy alone on the same start states; report the difference "
        "with its paired standard error",
    )
    evaluate.add_argument(
        "--json", action="store_true", help="print one JSON object, with each episode's outcome"
    )
    evaluate.add_argument(
        "--video",
        type=_count(0),
        default=0,
        help="draw the first K episodes of each way of acting as MP4s (DIR/videos/eval_...)",
    )
    evaluate.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extraction settings to try, e.g. --set extraction.candidates=8",
    )

    bench = sub.add_parser("bench", help="throughput against this machine's limit; memory of a large store")
    bench.add_argument("what", choices=["train", "sample", "rollout", "memory", "serve", "sim"])
    bench.add_argument("task", nargs="?", default="lift", help="sim: the robosuite task (default: lift)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--threads", type=_count(1), help="torch threads (train: 2, sample: 1)")
    bench.add_argument("--envs", type=_count(1), default=8, help="sample: environments in the batch")
    bench.add_argument("--workers", default="1,2", help="rollout: worker counts to measure, e.g. 1,2")
    bench.add_argument(
        "--episodes",
        type=_count(1),
        default=3,
        help="rollout: episodes per environment (W x envs_per_worker)",
    )
    bench.add_argument(
        "--transitions", type=_count(1), default=1_000_000, help="memory: transitions in the store"
    )
    bench.add_argument("--clients", help="serve: numbers of clients acting at once, e.g. 1,4 (default)")
    bench.add_argument("--actions", type=_count(1), default=200, help="serve: timed actions per client")
    bench.add_argument("--steps", type=_count(1), default=400, help="sim: timed steps per measurement")
    bench.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides, as for run"
    )

    study = sub.add_parser(
        "study", help="a grid of runs (tasks x presets x M x noise x seeds), its summary and figures"
    )
    study.add_argument("--tasks", help="comma-separated tasks (default: lift)")
    study.add_argument("--algos", help="comma-separated presets, e.g. recipe,il (default: recipe)")
    study.add_argument("--seeds", type=_count(1), help="seeds 0..K-1 per point (default: 3)")
    study.add_argument("--iterations", type=int)
    study.add_argument("--rollouts", help="rollouts M per iteration, comma-separated, e.g. 50,100,200")
    study.add_argument("--eval-episodes", type=int)
    study.add_argument("--ou-sigma", help="OU noise levels, comma-separated, e.g. 0,0.3 (default: 0)")
    study.add_argument("--workers", type=int, help="collection processes per run")
    study.add_argument("--quick", action="store_true", help="every run in quick mode")
    study.add_argument(
        "--config",
        type=Path,
        help="a YAML file of config keys for every run (e.g. configs/square.yaml), before --set; its "
        "algorithm names the study's preset unless --algos names them",
    )
    study.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides for every run"
    )
    study.add_argument(
        "--parallel", type=_count(1), help="runs at once (default: one per 2 cores; Ray: every run)"
    )
    study.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="each run a process here, or a Ray task holding its --workers CPUs (shared study directory)",
    )
    study.add_argument("--ray-address", help="the Ray cluster to run on (default: start a local Ray)")
    place = study.add_mutually_exclusive_group()
    place.add_argument("--out", type=Path, help="the study directory")
    place.add_argument("--resume", type=Path, metavar="DIR", help="continue the study in DIR with its grid")

    plot = sub.add_parser("plot", help="redraw the figures of run or study directories")
    plot.add_argument("dirs", type=Path, nargs="+")
    video = sub.add_parser("video", help="draw a run's stored episodes as MP4s, from their simulator states")
    video.add_argument("dir", type=Path)
    video.add_argument("--iteration", type=_count(0), help="default: the latest finished")
    video.add_argument("--count", type=_count(1), default=4, help="episodes to draw (the first ones)")
    video.add_argument(
        "--source",
        choices=["eval", "plain", "rollout"],
        default="eval",
        help="eval: as deployed; plain: the policy alone; rollout: the iteration's collected rollouts",
    )
    video.add_argument("--quiet", action="store_true", help="no progress bar")
    _robot_commands(sub)
    return parser


# The config keys that have flags of their own.
_OWN_FLAGS = {"task", "algo", "quick"}


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """Every config key as --KEY VALUE (--train.policy-steps 5000), with its help and default, read
    from the config dataclasses (borl/settings.py); values are checked when the config is built."""
    from borl.config import RunConfig
    from borl.settings import SETTING, keys

    group = parser.add_argument_group(
        "settings",
        "every config key (also --set KEY=VALUE or a --config file); limits are checked once, when the "
        "config is built",
    )
    for key in keys(RunConfig()):
        if key.name in _OWN_FLAGS:
            continue
        # A help that says what an unset key means carries its own default.
        shown = "" if "default" in key.help else f" (default: {_shown(key.default)})"
        group.add_argument(
            f"--{key.name.replace('_', '-')}",
            *key.flags,
            dest=SETTING + key.name,
            metavar=key.metavar,
            help=(key.help + shown).replace("%", "%%"),
        )


def _shown(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        if all(isinstance(v, str) for v in value):
            return ",".join(value) or "none"
        return str(list(value))
    return str(value)


def _robot_commands(sub: argparse._SubParsersAction) -> None:
    """The loop without a simulator (docs/robot.md): train, serve, drive, ingest."""
    train = sub.add_parser("train", help="train a run's next iteration on all its data (no simulator)")
    train.add_argument("dir", type=Path)
    train.add_argument("--task", help="a new run's task (its observation keys and action size)")
    train.add_argument("--dataset", help="a new run's demonstrations (robomimic HDF5)")
    train.add_argument("--demos", type=_count(1), help="a new run's D0 size (default: every episode)")
    train.add_argument("--algo", default="recipe", help="a new run's preset (default: recipe)")
    train.add_argument("--quick", action="store_true", help="a new run with the smallest settings")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a new run's config")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    serve = sub.add_parser("serve", help="serve a run's agent to robots over a websocket")
    serve.add_argument("dir", type=Path, help="a run directory or a checkpoint directory")
    serve.add_argument("--iteration", type=_count(0), help="serve this iteration (default: the latest)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    serve.add_argument("--port", type=_count(0), default=8765, help="port (0: any free one)")
    serve.add_argument("--token", help="shared token clients must send (default: $BORL_SERVE_TOKEN)")
    serve.add_argument("--max-clients", type=_count(1), default=8)
    serve.add_argument("--max-message-bytes", type=_count(1024), default=1 << 20)
    serve.add_argument(
        "--ou-sigma", type=_nonnegative_float, help="OU noise while acting (default: the run's)"
    )
    serve.add_argument("--threads", type=_count(1), default=1, help="torch threads for acting")
    serve.add_argument(
        "--max-batch",
        type=_count(1),
        default=8,
        help="clients waiting that act in one batch (1: one at a time)",
    )
    serve.add_argument(
        "--follow",
        action="store_true",
        help="serve a newer iteration as soon as it is trained (never mid-episode)",
    )

    drive = sub.add_parser("drive", help="run a robot's control loop against the agent, recording episodes")
    drive.add_argument("dir", type=Path, nargs="?", help="a run to act in-process (or use --server)")
    drive.add_argument("--robot", required=True, help="the robot, e.g. sim:lift")
    drive.add_argument("--episodes", type=_count(1), required=True)
    drive.add_argument("--out", type=Path, required=True, help="the recording (robomimic HDF5; appended to)")
    drive.add_argument("--server", help="a policy server, e.g. ws://127.0.0.1:8765")
    drive.add_argument("--token", help="the server's token (default: $BORL_SERVE_TOKEN)")
    drive.add_argument("--iteration", type=_count(0), help="in-process: this iteration (default: the latest)")
    drive.add_argument(
        "--rate", type=_nonnegative_float, help="control rate in Hz (default: the robot's; 0: no wait)"
    )
    drive.add_argument("--seed", type=int, default=0, help="the episodes' seeds start here")
    drive.add_argument("--horizon", type=_count(1), help="episode length limit (default: the robot's)")

    ingest = sub.add_parser("ingest", help="check recordings and add them as a run's next iteration")
    ingest.add_argument("dir", type=Path)
    ingest.add_argument("files", type=Path, nargs="+")
    ingest.add_argument(
        "--source", choices=["robot", "demo"], default="robot", help="demo: new teleoperated demonstrations"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except BorlError as error:
        print(f"borl: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # A file the command reads or writes failed (disk full, read-only, removed): say which.
        where = f"{error.filename}: " if error.filename else ""
        print(f"borl: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"borl: interrupted{_RESUME_HINTS.get(args.command, '')}", file=sys.stderr)
        return 130


# What to type to continue after Ctrl-C (a study prints its own, naming its directory).
_RESUME_HINTS = {
    "run": " (continue with `borl resume DIR`)",
    "resume": " (continue with `borl resume DIR`)",
    "retrain": " (continue with `borl resume OUT`)",
}


def _dispatch(args: argparse.Namespace) -> int:
    from borl import commands

    handler = getattr(commands, args.command)
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
