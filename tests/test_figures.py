"""The study's figures and `borl plot` on a synthetic study directory, written by hand: no simulation."""

import csv
from pathlib import Path

import numpy as np

from borl import study as studies
from borl.cli import main
from borl.config import build_config, save_config
from borl.data.episode import Episode, Lineage
from borl.data.store import EpisodeStore
from borl.envs.registry import get_task
from borl.eval.figures import draw_study_figures, eef_slice, title_figure
from borl.run_directory import METRIC_COLUMNS

ALL_FIGURES = {
    "fig3_success_vs_iteration_lift.png",
    "fig4_visitation_3d_lift.png",
    "fig4_visitation_xz_lift.png",
    "fig5_success_vs_rollouts_lift.png",
    "fig6_implicit_vs_explicit_lift.png",
    "fig7_diffusion_vs_gaussian_lift.png",
    "fig8_ou_noise_lift.png",
}


def _episode(rng: np.random.Generator, iteration: int, index: int, success: bool) -> Episode:
    steps = 6
    observations = rng.normal(size=(steps + 1, get_task("lift").spec.obs_dim)).astype(np.float32)
    return Episode(
        observations=observations,
        actions=np.zeros((steps, 7), np.float32),
        rewards=np.zeros(steps, np.float32),
        terminated=success,
        success=success,
        lineage=Lineage("rollout", iteration, index, checkpoint=f"iter_{iteration - 1:03d}"),
    )


def make_study(root: Path, grid: studies.StudyGrid, episodes: int = 10) -> Path:
    """A finished study as `borl study` would leave it: config, metrics.csv and rollouts per run."""
    studies.open_study(root, grid)
    rng = np.random.default_rng(0)
    for point in grid.points():
        directory = root / point.relative
        directory.mkdir(parents=True)
        config = build_config(point.preset, grid.quick, grid.config_flags(point))
        save_config(config, directory / "config.yaml")
        rows = []
        for iteration in range(grid.iterations + 1):
            successes = int(rng.integers(0, episodes + 1))
            rate = successes / episodes
            rows.append(
                {
                    "iteration": iteration,
                    "eval_success_rate": rate,
                    "eval_stderr": (rate * (1 - rate) / episodes) ** 0.5,
                    "eval_episodes": episodes,
                    "policy_only_success_rate": rate,
                    "policy_only_stderr": 0.0,
                    "rollout_success_rate": 0.5 if iteration else float("nan"),
                    "rollouts": point.rollouts if iteration else 0,
                    "env_steps": 6 * point.rollouts if iteration else 0,
                    "transitions": 0,
                    "train_seconds": 1.0,
                    "collect_seconds": 1.0,
                    "eval_seconds": 1.0,
                }
            )
            store = EpisodeStore(directory / "data")
            for index in range(3 if iteration else 0):
                store.append(_episode(rng, iteration, index, success=index != 1))
        with open(directory / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return root


def _grid(**changes) -> studies.StudyGrid:
    values = {
        "tasks": ("lift",),
        "algos": ("recipe", "awr", "gaussian-awr", "gaussian-implicit"),
        "seeds": (0, 1),
        "rollouts": (4, 8),
        "ou_sigma": (0.0, 0.3),
        "iterations": 2,
        "eval_episodes": 10,
        "quick": True,
    }
    return studies.StudyGrid(**{**values, **changes})


def _draw(directory: Path, grid: studies.StudyGrid) -> tuple[set[str], list[str]]:
    notes: list[str] = []
    _, table, _ = studies.summarize(directory, grid)
    paths = studies.draw(directory, grid, table, note=notes.append)
    assert all(p.stat().st_size > 1000 for p in paths)
    return {p.name for p in paths}, notes


def test_full_grid_draws_every_figure(tmp_path):
    grid = _grid()
    names, notes = _draw(make_study(tmp_path / "study", grid), grid)
    assert names == ALL_FIGURES
    assert notes == []


def test_figures_lacking_their_axis_are_skipped_with_a_note(tmp_path):
    grid = _grid(algos=("recipe", "il"), seeds=(0,), rollouts=(4,), ou_sigma=(0.0,))
    names, notes = _draw(make_study(tmp_path / "study", grid), grid)
    assert names == {
        "fig3_success_vs_iteration_lift.png",
        "fig4_visitation_3d_lift.png",
        "fig4_visitation_xz_lift.png",
    }
    skipped = " ".join(notes)
    for name in ("fig5", "fig6", "fig7", "fig8"):
        assert f"skipped {name}_" in skipped
    assert "--rollouts" in skipped and "--ou-sigma" in skipped and "awr" in skipped


def test_one_policy_class_pair_is_enough_for_figure_7(tmp_path):
    grid = _grid(algos=("awr", "gaussian-awr"), seeds=(0,), rollouts=(4,), ou_sigma=(0.0,))
    names, _ = _draw(make_study(tmp_path / "study", grid), grid)
    assert "fig7_diffusion_vs_gaussian_lift.png" in names
    assert "fig6_implicit_vs_explicit_lift.png" not in names


def test_visitation_takes_successful_rollouts_eef_positions_from_the_task_spec(tmp_path):
    grid = _grid(algos=("recipe",), seeds=(0, 1), rollouts=(4, 8), ou_sigma=(0.0, 0.3))
    directory = make_study(tmp_path / "study", grid)
    positions, caption = studies.visitation(directory, grid, "lift")
    assert "M=8" in caption and "σ=0" in caption
    expected = []
    for seed in grid.seeds:
        store = EpisodeStore(directory / studies.Point("lift", "recipe", 8, 0.0, seed).relative / "data")
        expected += [e.observations[:, :3] for e in store.load(source="rollout") if e.success]
    np.testing.assert_array_equal(positions["recipe"], np.concatenate(expected))


def test_eef_slice_follows_the_observation_keys():
    assert eef_slice(get_task("lift").spec.obs_keys) == slice(0, 3)
    assert eef_slice((("object", 10), ("robot0_eef_pos", 3))) == slice(10, 13)
    assert eef_slice((("object", 10),)) is None


def test_no_finished_iteration_and_no_positions_are_notes_not_errors(tmp_path):
    notes: list[str] = []
    paths = draw_study_figures([], {"lift": ({}, "no successful rollouts")}, tmp_path, notes.append)
    assert paths == []
    assert len(notes) == 3 and "no finished iteration" in notes[0]


def test_borl_plot_redraws_a_study(tmp_path, capsys):
    grid = _grid(algos=("recipe",), seeds=(0,), rollouts=(4,), ou_sigma=(0.0,))
    directory = make_study(tmp_path / "study", grid)
    assert main(["plot", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "skipped fig5_success_vs_rollouts_lift.png" in out
    assert (directory / "summary.csv").exists() and (directory / "summary_by_method.csv").exists()
    assert (directory / "figures" / "fig3_success_vs_iteration_lift.png").stat().st_size > 0


def test_plot_of_a_missing_directory_is_one_line(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a run directory" in err


def test_a_long_title_stays_inside_a_one_panel_figure():
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots(figsize=(5.0, 4.2))
    title_figure(fig, "pen: success vs iteration (mean ± s.e. over up to 1 seeds; over episodes where one)")
    box = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    plt.close(fig)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
