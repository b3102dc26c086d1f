"""The paired protocol for critic and selection options (docs/recipe.md, "Choosing the critic").

Retrains iteration K of a finished recipe run once per critic option on exactly its data (`borl
retrain`), then evaluates each retrained agent with the policy alone and with every selection
option, all on the same start states (`borl eval --seed`). Options are compared on one set of start
states (the choosing seed); the best by deployed success, and IQL with plain best-of-32, are then
evaluated on another set (the reporting seed), whose numbers are the ones to report. Every result
is a JSON file under OUT/evals, skipped when present, so the script resumes where it stopped;
OUT/README.md holds the tables.

Usage: python scripts/paired_protocol.py SOURCE_RUN --out OUT [--iteration 1] [--choose-episodes 100]
       [--report-episodes 200] [--choose-seed 1000] [--report-seed 2000]
       (--choose-episodes 0: options fixed in advance, all reported, none chosen)
       [--critics iql,mc] [--selections argmax,safe1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from borl.eval.stats import paired_difference

# Training options (critic objective, and which episodes the policy imitates): `--set` assignments
# for `borl retrain`. The "f" options train the policy on successful episodes only (filtered_value).
CRITICS = {
    "iql": [],
    "mc": ["critic.mc_lower_bound=true"],
    "mc5": ["critic.mc_lower_bound=true", "critic.num_critics=5"],
    "iqlf": ["algorithm=filtered_value"],
    "mc5f": ["algorithm=filtered_value", "critic.mc_lower_bound=true", "critic.num_critics=5"],
    "calql": ["critic.kind=calql"],
    "calqlf": ["algorithm=filtered_value", "critic.kind=calql"],
}
# Selection options: `--set` assignments for `borl eval` (extraction only); "alone" is the policy alone.
SELECTIONS = {
    "argmax": [],
    "n8": ["extraction.candidates=8"],
    "safe0": ["extraction.safety_k=0"],
    "safe1": ["extraction.safety_k=1"],
    "safe2": ["extraction.safety_k=2"],
}
BASELINE = ("iql", "argmax")
# The retrained run's own evaluation is not what is measured here: one episode, no baseline.
RETRAIN_SETTINGS = ["eval_episodes=1", "eval_baseline=false"]


def borl(*args: str) -> str:
    command = [sys.executable, "-m", "borl", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"borl {' '.join(args)} failed: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout


def sets(assignments: list[str]) -> list[str]:
    return [item for setting in assignments for item in ("--set", setting)]


def retrain(source: Path, iteration: int, out: Path, critic: str) -> Path:
    directory = out / "retrained" / critic
    if (directory / "metrics" / f"iter_{iteration:03d}.json").exists():
        return directory
    if directory.exists():
        borl("resume", str(directory), "--quiet")
    else:
        settings = sets([*CRITICS[critic], *RETRAIN_SETTINGS])
        borl(
            "retrain",
            str(source),
            "--iteration",
            str(iteration),
            "--out",
            str(directory),
            "--quiet",
            *settings,
        )
    return directory


def successes(
    run: Path, iteration: int, out: Path, key: tuple[str, str], episodes: int, seed: int
) -> list[int]:
    """Per-episode outcomes of critic key[0] acting with selection key[1] ("alone": the policy alone)."""
    critic, selection = key
    path = out / "evals" / f"{critic}__{selection}__seed{seed}_n{episodes}.json"
    if not path.exists():
        args = [
            "eval",
            str(run),
            "--iteration",
            str(iteration),
            "--episodes",
            str(episodes),
            "--seed",
            str(seed),
        ]
        acting = ["--no-extraction"] if selection == "alone" else sets(SELECTIONS[selection])
        result = json.loads(borl(*args, "--json", *acting))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result))
    result = json.loads(path.read_text())
    outcomes = result["policy_alone" if selection == "alone" else "deployed"]["successes"]
    print(f"{critic} / {selection} / seed {seed}: {sum(outcomes)}/{len(outcomes)}", flush=True)
    return outcomes


def rate(outcomes: list[int]) -> float:
    return sum(outcomes) / len(outcomes)


def points(first: list[int], second: list[int]) -> str:
    mean, stderr = paired_difference(first, second)
    return f"{mean * 100:+.1f} ± {stderr * 100:.1f}"


def table(results: dict[tuple[str, str], list[int]]) -> list[str]:
    lines = [
        "| critic | selection | deployed | its policy alone | deployed − alone | deployed − IQL best-of-32 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (critic, selection), outcomes in results.items():
        if selection == "alone":
            continue
        alone = results[(critic, "alone")]
        versus = points(results[BASELINE], outcomes) if (critic, selection) != BASELINE else "–"
        lines.append(
            f"| {critic} | {selection} | {rate(outcomes):.1%} | {rate(alone):.1%} | "
            f"{points(alone, outcomes)} | {versus} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a finished recipe run")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--iteration", type=int, default=1)
    parser.add_argument("--choose-episodes", type=int, default=100)
    parser.add_argument("--report-episodes", type=int, default=200)
    parser.add_argument("--choose-seed", type=int, default=1000)
    parser.add_argument("--report-seed", type=int, default=2000)
    parser.add_argument("--critics", default=",".join(CRITICS))
    parser.add_argument("--selections", default=",".join(SELECTIONS))
    args = parser.parse_args()
    critics, selections = args.critics.split(","), args.selections.split(",")
    unknown = sorted(({*critics} - {*CRITICS}) | ({*selections} - {*SELECTIONS}))
    if unknown or BASELINE[0] not in critics or BASELINE[1] not in selections:
        raise SystemExit(f"unknown options {unknown}, or the baseline {BASELINE} left out")
    runs = {critic: retrain(args.source, args.iteration, args.out, critic) for critic in critics}

    def measure(keys: list[tuple[str, str]], episodes: int, seed: int) -> dict[tuple[str, str], list[int]]:
        return {key: successes(runs[key[0]], args.iteration, args.out, key, episodes, seed) for key in keys}

    grid = [(c, s) for c in critics for s in ["alone", *selections]]
    choosing_lines = []
    if args.choose_episodes > 0:
        choosing = measure(grid, args.choose_episodes, args.choose_seed)
        best = max((k for k in grid if k[1] != "alone"), key=lambda k: sum(choosing[k]))
        reported = sorted({BASELINE, best, (BASELINE[0], "alone"), (best[0], "alone")}, key=grid.index)
        choosing_lines = [
            f"## Choosing: {args.choose_episodes} start states (eval seed {args.choose_seed})",
            "",
            *table(choosing),
            "",
            f"Chosen by deployed success: {best[0]} / {best[1]}.",
            "",
        ]
    else:
        # Nothing is chosen: every option, fixed in advance, is reported.
        reported = grid
    reporting = measure(reported, args.report_episodes, args.report_seed)
    command = " ".join(sys.argv[1:])
    lines = [
        f"# Paired protocol: {args.source}, iteration {args.iteration}",
        "",
        f"Command: `python scripts/paired_protocol.py {command}`",
        "",
        "Differences are in points, with their paired standard error (the same start states).",
        "",
        *choosing_lines,
        f"## Reporting: {args.report_episodes} other start states (eval seed {args.report_seed})",
        "",
        *table(reporting),
        "",
        "Critics: " + "; ".join(f"{c}: {' '.join(CRITICS[c]) or 'IQL defaults'}" for c in critics),
        "",
        "Selections: "
        + "; ".join(f"{s}: {' '.join(SELECTIONS[s]) or 'best-of-32, min Q'}" for s in selections),
        "",
    ]
    (args.out / "README.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
