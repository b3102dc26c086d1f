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
    episodes = rows[0]["eval_episodes"] if rows else 0
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
