"""The study's figures (Dong et al. 2025, Figures 3-8), drawn from its over-seeds table.

Each figure is drawn from whatever the grid holds. A figure whose axis the grid lacks (a single M for
Figure 5, no OU noise for Figure 8, no AWR run for Figure 6, ...) is skipped with a note saying why.
Error bars are the standard error over seeds; with a single seed, over that seed's episodes.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from borl.config import PRESETS  # noqa: E402

# Viridis with unvisited (zero, masked on a log scale) cells in its lowest colour.
_EMPTY_AS_LOWEST = matplotlib.colormaps["viridis"].with_extremes(
    bad=matplotlib.colormaps["viridis"](0.0), under=matplotlib.colormaps["viridis"](0.0)
)

Row = dict[str, Any]

EEF_KEY = "robot0_eef_pos"
# Characters of a 10-point title per inch of figure: where title_figure wraps titles.
_TITLE_CHARS_PER_INCH = 13

# Figure 6: the same diffusion policy, the critic used at rollout (implicit) or in training (explicit).
EXTRACTION_PRESETS = {"recipe": "implicit\n(recipe)", "awr": "explicit\n(awr)"}
# Figure 7: diffusion against Gaussian, within each extraction.
POLICY_CLASS_PAIRS = {
    "implicit": (("recipe", "diffusion"), ("gaussian-implicit", "Gaussian")),
    "explicit": (("awr", "diffusion"), ("gaussian-awr", "Gaussian")),
}


class _Skip(Exception):
    """The grid lacks what a figure needs; the message says what."""


def eef_slice(obs_keys: Sequence[tuple[str, int]]) -> slice | None:
    """Where the end-effector position lies in a flat observation of these keys; None if absent."""
    offset = 0
    for key, size in obs_keys:
        if key == EEF_KEY:
            return slice(offset, offset + size)
        offset += size
    return None


def _preset_order(rows: list[Row]) -> list[str]:
    present = {r["preset"] for r in rows}
    return [p for p in PRESETS if p in present] + sorted(present - set(PRESETS))


def _color(preset: str) -> str:
    names = list(PRESETS)
    return f"C{names.index(preset) % 10}" if preset in names else "C9"


def _settings(rows: list[Row]) -> list[tuple[int, float]]:
    return sorted({(r["rollouts"], r["ou_sigma"]) for r in rows})


def _setting_title(rollouts: int, ou_sigma: float) -> str:
    return f"M={rollouts}, " + (f"OU σ={ou_sigma:g}" if ou_sigma else "no noise")


def _yerr(row: Row) -> float:
    if math.isfinite(row["stderr"]):
        return row["stderr"]
    p, n = row["mean"], row["episodes"]
    return math.sqrt(p * (1 - p) / n) if n else 0.0


def _success_line(ax: Any, points: list[Row], x: str, label: str, color: str) -> None:
    """Mean success of `points` against their `x` field, with standard-error bars."""
    ax.errorbar(
        [r[x] for r in points],
        [r["mean"] for r in points],
        yerr=[_yerr(r) for r in points],
        marker="o",
        capsize=3,
        label=label,
        color=color,
    )


def _error_note(rows: list[Row]) -> str:
    seeds = max(r["seeds"] for r in rows)
    if min(r["seeds"] for r in rows) > 1:
        return f"mean ± s.e. over {seeds} seeds"
    return f"mean ± s.e. over up to {seeds} seeds; over episodes where one"


def _series(rows: list[Row], preset: str, rollouts: int, ou_sigma: float) -> list[Row]:
    """One preset's rows at one setting, by iteration."""
    chosen = [r for r in rows if (r["preset"], r["rollouts"], r["ou_sigma"]) == (preset, rollouts, ou_sigma)]
    return sorted(chosen, key=lambda r: r["iteration"])


def _panels(count: int, width: float = 4.4, **subplot_kw: Any) -> tuple[plt.Figure, list[Any]]:
    fig, axes = plt.subplots(
        1, count, figsize=(width * count + 0.6, 4.2), squeeze=False, subplot_kw=subplot_kw or None
    )
    return fig, list(axes[0])


def title_figure(fig: plt.Figure, title: str) -> None:
    """Give fig its title, wrapped to the figure's width (a one-panel figure is narrower than most
    titles), and lay the figure out around it."""
    fig.suptitle(textwrap.fill(title, width=int(fig.get_figwidth() * _TITLE_CHARS_PER_INCH)), fontsize=10)
    fig.tight_layout()


def _save(fig: plt.Figure, path: Path, title: str) -> Path:
    title_figure(fig, title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _success_axis(ax: Any) -> None:
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)


def success_vs_iteration(rows: list[Row], path: Path, task: str) -> Path:
    """Figure 3: evaluation success against iteration, one line per preset, a panel per (M, noise)."""
    settings = _settings(rows)
    fig, axes = _panels(len(settings))
    for ax, (rollouts, ou_sigma) in zip(axes, settings, strict=True):
        for preset in _preset_order(rows):
            series = _series(rows, preset, rollouts, ou_sigma)
            if series:
                _success_line(ax, series, "iteration", preset, _color(preset))
        ax.set_title(_setting_title(rollouts, ou_sigma), fontsize=9)
        ax.set_xlabel("iteration (0 = trained on D0 only)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        _success_axis(ax)
    axes[0].set_ylabel("evaluation success")
    axes[-1].legend(fontsize=8)
    return _save(fig, path, f"{task}: success vs iteration ({_error_note(rows)})")


def _finals(rows: list[Row]) -> dict[tuple[str, int, float], Row]:
    """Each (preset, M, noise)'s row at its last evaluated iteration."""
    finals: dict[tuple[str, int, float], Row] = {}
    for row in rows:
        key = (row["preset"], row["rollouts"], row["ou_sigma"])
        if key not in finals or row["iteration"] > finals[key]["iteration"]:
            finals[key] = row
    return finals


def success_vs_rollouts(rows: list[Row], path: Path, task: str) -> Path:
    """Figure 5: final success against rollouts per iteration M, one line per preset."""
    counts = sorted({r["rollouts"] for r in rows})
    if len(counts) < 2:
        raise _Skip(f"needs two or more values of --rollouts, the grid has {counts}")
    finals = _finals(rows)
    noises = sorted({r["ou_sigma"] for r in rows})
    fig, axes = _panels(len(noises))
    for ax, ou_sigma in zip(axes, noises, strict=True):
        for preset in _preset_order(rows):
            points = [finals[(preset, m, ou_sigma)] for m in counts if (preset, m, ou_sigma) in finals]
            if points:
                _success_line(ax, points, "rollouts", preset, _color(preset))
        ax.set_title("no noise" if not ou_sigma else f"OU σ={ou_sigma:g}", fontsize=9)
        ax.set_xlabel("rollouts per iteration M")
        ax.set_xticks(counts)
        _success_axis(ax)
    axes[0].set_ylabel("success at the final iteration")
    axes[-1].legend(fontsize=8)
    return _save(fig, path, f"{task}: data scaling ({_error_note(rows)})")


def _before_after(rows: list[Row], path: Path, groups: list[tuple[str, str]], title: str) -> Path:
    """Bars of iteration 0 and the final iteration for each (preset, label), a panel per (M, noise)."""
    settings = [s for s in _settings(rows) if all(_series(rows, p, *s) for p, _ in groups)]
    if not settings:
        raise _Skip(f"no (M, noise) setting has runs of all of {', '.join(p for p, _ in groups)}")
    fig, axes = _panels(len(settings), width=max(4.4, 1.4 * len(groups)))
    width = 0.38
    for ax, setting in zip(axes, settings, strict=True):
        ticks = []
        for x, (preset, label) in enumerate(groups):
            series = _series(rows, preset, *setting)
            first, last = series[0], series[-1]
            for offset, row, shade in ((-width / 2, first, 0.35), (width / 2, last, 1.0)):
                ax.bar(
                    x + offset,
                    row["mean"],
                    width,
                    yerr=_yerr(row),
                    capsize=3,
                    color=_color(preset),
                    alpha=shade,
                    edgecolor="black",
                    linewidth=0.5,
                )
            ticks.append(f"{label}\niter {first['iteration']} → {last['iteration']}")
        ax.set_xticks(range(len(groups)), ticks, fontsize=8)
        ax.set_title(_setting_title(*setting), fontsize=9)
        _success_axis(ax)
    axes[0].set_ylabel("success (light: iteration 0, dark: last)")
    return _save(fig, path, f"{title} ({_error_note(rows)})")


def implicit_vs_explicit(rows: list[Row], path: Path, task: str) -> Path:
    """Figure 6: before/after the loop, implicit (recipe) against explicit (awr) extraction."""
    missing = [p for p in EXTRACTION_PRESETS if p not in {r["preset"] for r in rows}]
    if missing:
        raise _Skip(f"needs presets recipe and awr; the grid lacks {', '.join(missing)}")
    groups = list(EXTRACTION_PRESETS.items())
    return _before_after(rows, path, groups, f"{task}: implicit vs explicit extraction")


def diffusion_vs_gaussian(rows: list[Row], path: Path, task: str) -> Path:
    """Figure 7: before/after the loop, diffusion against Gaussian policies, for each extraction."""
    present = {r["preset"] for r in rows}
    groups = [
        (preset, f"{policy}\n{extraction}")
        for extraction, pair in POLICY_CLASS_PAIRS.items()
        if all(p in present for p, _ in pair)
        for preset, policy in pair
    ]
    if not groups:
        raise _Skip("needs recipe with gaussian-implicit, or awr with gaussian-awr")
    return _before_after(rows, path, groups, f"{task}: diffusion vs Gaussian policy")


def ou_noise(rows: list[Row], path: Path, task: str) -> Path:
    """Figure 8: final success with and without OU noise against M, a panel per preset."""
    noises = sorted({r["ou_sigma"] for r in rows})
    if len(noises) < 2:
        raise _Skip(f"needs two or more values of --ou-sigma, the grid has {noises}")
    finals = _finals(rows)
    counts = sorted({r["rollouts"] for r in rows})
    presets = _preset_order(rows)
    fig, axes = _panels(len(presets))
    for ax, preset in zip(axes, presets, strict=True):
        for index, ou_sigma in enumerate(noises):
            points = [finals[(preset, m, ou_sigma)] for m in counts if (preset, m, ou_sigma) in finals]
            if points:
                label = "no noise" if not ou_sigma else f"OU σ={ou_sigma:g}"
                _success_line(ax, points, "rollouts", label, f"C{index}")
        ax.set_title(preset, fontsize=9)
        ax.set_xlabel("rollouts per iteration M")
        ax.set_xticks(counts)
        _success_axis(ax)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("success at the final iteration")
    return _save(fig, path, f"{task}: with and without OU noise ({_error_note(rows)})")


def visitation_3d(positions: dict[str, np.ndarray], path: Path, task: str, caption: str) -> Path:
    """Figure 4 (3D): end-effector positions of successful trajectories, a panel per preset.

    At most 4000 points per panel, drawn evenly at random (seeded) so that panels stay comparable.
    """
    if not positions:
        raise _Skip(f"no states to draw ({caption})")
    rng = np.random.default_rng(0)
    everything = np.concatenate(list(positions.values()))
    low, high = everything.min(axis=0), everything.max(axis=0)
    fig, axes = _panels(len(positions), projection="3d")
    for ax, (preset, points) in zip(axes, positions.items(), strict=True):
        shown = points[rng.choice(len(points), size=min(len(points), 4000), replace=False)]
        alpha = min(0.8, max(0.05, 300 / len(shown)))  # sparse clouds visible, dense ones see-through
        ax.scatter(shown[:, 0], shown[:, 1], shown[:, 2], s=3, alpha=alpha, color=_color(preset))
        ax.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]), zlim=(low[2], high[2]))
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_zlabel("z")
        ax.set_title(f"{preset} ({len(points)} states)", fontsize=9)
    return _save(fig, path, f"{task}: end-effector positions, {caption}")


def visitation_heatmap(positions: dict[str, np.ndarray], path: Path, task: str, caption: str) -> Path:
    """Figure 4 (cross-section): the x-z histogram of the same positions, as each preset's fraction
    of its states per cell, on shared bins and one colour scale."""
    if not positions:
        raise _Skip(f"no states to draw ({caption})")
    everything = np.concatenate(list(positions.values()))
    extent = [(everything[:, axis].min(), everything[:, axis].max() + 1e-6) for axis in (0, 2)]
    histograms = {
        preset: np.histogram2d(points[:, 0], points[:, 2], bins=40, range=extent)[0].T / len(points)
        for preset, points in positions.items()
    }
    # A log scale: most states sit at the grasp, and the approach paths would vanish on a linear one.
    top = max(h.max() for h in histograms.values())
    floor = min(h[h > 0].min() for h in histograms.values() if h.any())
    fig, axes = _panels(len(positions))
    for ax, (preset, histogram) in zip(axes, histograms.items(), strict=True):
        image = ax.imshow(
            histogram,
            origin="lower",
            extent=(*extent[0], *extent[1]),
            aspect="auto",
            cmap=_EMPTY_AS_LOWEST,
            norm=LogNorm(vmin=floor, vmax=top),
        )
        ax.set_xlabel("x")
        ax.set_title(preset, fontsize=9)
    axes[0].set_ylabel("z")
    fig.colorbar(image, ax=axes, label="fraction of states (log scale)")
    fig.suptitle(f"{task}: end-effector x-z visitation, {caption}", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


TABLE_FIGURES: tuple[tuple[str, Callable[[list[Row], Path, str], Path]], ...] = (
    ("fig3_success_vs_iteration", success_vs_iteration),
    ("fig5_success_vs_rollouts", success_vs_rollouts),
    ("fig6_implicit_vs_explicit", implicit_vs_explicit),
    ("fig7_diffusion_vs_gaussian", diffusion_vs_gaussian),
    ("fig8_ou_noise", ou_noise),
)

VISITATION_FIGURES: tuple[tuple[str, Callable[[dict[str, np.ndarray], Path, str, str], Path]], ...] = (
    ("fig4_visitation_3d", visitation_3d),
    ("fig4_visitation_xz", visitation_heatmap),
)


def draw_study_figures(
    table: list[Row],
    visits: dict[str, tuple[dict[str, np.ndarray], str]],
    out: Path,
    note: Callable[[str], None] = print,
) -> list[Path]:
    """Every figure each task's rows support, as out/<figure>_<task>.png; notes the ones skipped.

    table: the over-seeds rows (`borl.study.aggregate`); visits: per task, each preset's end-effector
    positions and a caption saying which trajectories they come from.
    """
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    for task in sorted({r["task"] for r in table} | set(visits)):
        rows = [r for r in table if r["task"] == task]
        attempts: list[tuple[str, Callable[[Path], Path]]] = []
        if rows:
            attempts += [(name, partial(figure, rows, task=task)) for name, figure in TABLE_FIGURES]
        else:
            note(f"skipped {task}'s success figures: no finished iteration yet")
        if task in visits:
            positions, caption = visits[task]
            attempts += [
                (name, partial(figure, positions, task=task, caption=caption))
                for name, figure in VISITATION_FIGURES
            ]
        for name, draw in attempts:
            path = out / f"{name}_{task}.png"
            try:
                drawn.append(draw(path))
            except _Skip as reason:
                note(f"skipped {path.name}: {reason}")
    return drawn
