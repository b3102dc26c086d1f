"""`borl bench` reports its figures as JSON; the eager reference trains the same networks."""

import json
import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from borl.bench import synthetic_agent, synthetic_buffer, synthetic_episodes
from borl.cli import main
from borl.config import build_config
from borl.data.replay import TransitionDataset
from borl.eager_reference import EagerReference

TINY = ["--set", "policy.width=32", "--set", "critic.hidden=32", "--set", "train.batch_size=32"]


def bench_json(capsys, *args: str) -> dict:
    assert main(["bench", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _onednn_gemm_flops(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """oneDNN's a @ b.T, which torch's FLOP counter does not know."""
    return 2 * math.prod(a_shape) * b_shape[0]


@pytest.mark.parametrize("algo", ["recipe", "gaussian-implicit"])
def test_flop_counts_match_torchs_count_of_an_update(algo: str) -> None:
    """The FLOPs the benchmarks divide by are those the update runs (torch counts every matmul,
    forward and backward); the diffusion policy's Fourier features (128 FLOPs a row) are left out."""
    agent = synthetic_agent(build_config(algo), 19, 7)
    data = TransitionDataset(list(synthetic_episodes(800, 19, 7)), agent.normalizer)
    batch = data.sample(64, torch.Generator().manual_seed(0))
    gemm = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    onednn = {gemm: _onednn_gemm_flops} if gemm is not None else {}
    for learner in (agent.critic, agent.policy):
        with FlopCounterMode(display=False, custom_mapping=onednn) as counter:
            learner.update(batch)
        assert learner.update_flops_per_row() == pytest.approx(counter.get_total_flops() / 64, rel=1e-4)


def test_bench_train_reports_ours_and_the_eager_reference(capsys, one_thread, device):
    result = bench_json(capsys, "train", "--threads", "1", "--set", f"device={device}", *TINY)
    keys = ("update_ms", "achieved_gflops", "roofline_gflops", "ratio", "sequential_ratio", "eager_ratio")
    keys += ("roofline_one_thread_gflops", "critic_alone_ratio", "policy_alone_ratio")
    for key in keys:
        assert result[key] > 0
    assert result["device"] == device
    assert result["overlapped"] is False  # one thread (and on CUDA, one stream): nothing to overlap
    assert result["ratio"] == result["achieved_gflops"] / result["roofline_gflops"]


def test_bench_rollout_measures_each_worker_count_over_the_same_waves(capsys):
    args = ["--workers", "1,2", "--episodes", "1", "--set", "horizon=5", "--set", "extraction.candidates=2"]
    result = bench_json(capsys, "rollout", *TINY, *args)
    assert [r["workers"] for r in result["per_workers"]] == [1, 2]
    assert [r["episodes"] for r in result["per_workers"]] == [8, 16]  # 8 environments per worker
    for row in result["per_workers"]:
        assert row["steps_per_second"] > 0 and row["ratio"] == row["steps_per_second"] / row["limit"]
    assert result["ratio"] == min(r["ratio"] for r in result["per_workers"])
    assert 0 < result["policy_share_of_step"] < 1


def test_bench_memory_samples_from_a_store(capsys):
    result = bench_json(capsys, "memory", "--transitions", "4000")
    assert result["transitions"] == 4000
    assert result["peak_rss_after_sampling_mb"] >= result["peak_rss_before_load_mb"] > 0


def test_eager_reference_updates_every_network(one_thread):
    config = build_config("recipe", True)
    reference = EagerReference(config, 5, 2, synthetic_buffer(100, 5, 2))
    networks = [
        reference.q1,
        reference.q2,
        reference.v,
        reference.noise_net,
        reference.q1_target,
        reference.ema,
    ]
    before = [torch.cat([p.detach().flatten().clone() for p in n.parameters()]) for n in networks]
    reference.update()
    after = [torch.cat([p.detach().flatten() for p in n.parameters()]) for n in networks]
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=True))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_bench_on_a_missing_gpu_is_one_line(capsys):
    assert main(["bench", "train", "--set", "device=cuda"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "borl: error: --device cuda asked for, but PyTorch sees no CUDA device"
    )


def test_sim_breakdown_parts_add_up_to_the_step():
    from borl.bench_sim import PARTS, step_breakdown

    result = step_breakdown("lift", steps=30)
    parts = [result[f"{part}_ms"] for part in PARTS]
    assert (
        all(value > 0 for value in parts[:3]) and result["python_glue_ms"] > -0.05 * result["wrapped_step_ms"]
    )
    assert sum(parts) + result["python_glue_ms"] == pytest.approx(result["wrapped_step_ms"])
    assert result["substeps"] == 25 and 0 < result["raw_mj_step_ms"] < result["wrapped_step_ms"]
    assert result["robosuite_steps_per_s"] == pytest.approx(1e3 / result["step_ms"])


def test_sim_breakdown_of_the_fast_step_adds_up_too():
    from borl.bench_sim import FAST_PARTS, step_breakdown

    result = step_breakdown("can", steps=30)
    parts = [result[f"{part}_ms"] for part in FAST_PARTS]
    assert result["fast_forward_ms"] > 0 and result["fast_observables_ms"] > 0
    assert result["fast_kernel_and_glue_ms"] > result["fast_observables_ms"]  # 25 substeps of physics
    assert sum(parts) + result["fast_kernel_and_glue_ms"] == pytest.approx(result["fast_wrapped_step_ms"])


def test_bench_sim_json_puts_robosuites_step_beside_the_fast_one(capsys):
    result = bench_json(capsys, "sim", "lift", "--steps", "20")
    assert {"robosuite_steps_per_s", "fast_steps_per_s", "speedup", "step_ms", "fast_step_ms"} <= set(result)
    assert result["speedup"] == pytest.approx(result["fast_steps_per_s"] / result["robosuite_steps_per_s"])
    assert result["fast_steps_per_s"] == pytest.approx(1e3 / result["fast_step_ms"])


def test_sim_breakdown_of_a_task_robosuite_does_not_run_is_one_line(capsys):
    assert main(["bench", "sim", "pen"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "measures robosuite tasks; 'pen' is not one" in err
