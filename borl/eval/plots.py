"""Figures of a run: success against iteration, with standard-error bars."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_success(rows: list[dict], path: Path, title: str = "") -> Path:
    """Evaluation success per iteration (as deployed, and the policy alone when measured) and the
    success of the rollouts collected with the previous iteration's agent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    iterations = [r["iteration"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    series = [
        ("eval_success_rate", "eval_stderr", "evaluation (as deployed)", "C0"),
        ("policy_only_success_rate", "policy_only_stderr", "evaluation (policy sample, no extraction)", "C1"),
    ]
    for key, err, label, color in series:
        values = [r.get(key, math.nan) for r in rows]
        if all(math.isnan(v) for v in values):
            continue
        errors = [r.get(err, 0.0) for r in rows]
        ax.errorbar(iterations, values, yerr=errors, marker="o", capsize=3, label=label, color=color)
    rollout = [(r["iteration"], r["rollout_success_rate"]) for r in rows if r.get("rollouts")]
    if rollout:
        ax.plot(
            *zip(*rollout, strict=True),
            "s--",
            color="C2",
            alpha=0.7,
            label="rollouts (collected by the previous iteration's agent)",
        )
    counts = sorted({int(r["eval_episodes"]) for r in rows}) or [0]
    episodes = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    ax.set_xlabel("iteration (0 = trained on demonstrations only)")
    ax.set_ylabel(f"success rate (± s.e., {episodes} episodes)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(iterations)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training_curves(files: list[Path], path: Path, title: str = "") -> Path:
    """Every logged loss and value of training, one panel per quantity, one line per iteration
    (files: the run's curves/iter_K.csv, in order)."""
    import csv

    runs = []
    for file in files:
        with open(file, newline="") as f:
            runs.append((file.stem, list(csv.DictReader(f))))
    quantities = list(
        dict.fromkeys(
            (row["phase"], key)
            for _, rows in runs
            for row in rows
            for key, value in row.items()
            if key not in ("phase", "step") and value not in ("", None)
        )
    )
    columns = min(3, max(1, len(quantities)))
    lines = max(1, -(-len(quantities) // columns))
    fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 2.8 * lines), squeeze=False)
    colors = plt.cm.viridis([i / max(1, len(runs) - 1) for i in range(len(runs))])
    for ax, (phase, key) in zip(axes.flat, quantities, strict=False):
        for (name, rows), color in zip(runs, colors, strict=True):
            picked = [(int(r["step"]), float(r[key])) for r in rows if r["phase"] == phase and r.get(key)]
            if picked:
                ax.plot(*zip(*picked, strict=True), color=color, label=name, linewidth=1)
        ax.set_title(f"{phase}: {key}", fontsize=9)
        ax.set_xlabel("update", fontsize=8)
        if key.endswith("loss"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(quantities) :]:
        ax.axis("off")
    if quantities:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
