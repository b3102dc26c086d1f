"""Shared fixtures: every test in its own working directory, the repository's neighbour folder of files
written by other projects' tools, one thread for small networks, the devices to train on, and the test
module's task environment."""

from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def own_working_directory(tmp_path_factory, monkeypatch) -> Path:
    """Each test runs in a fresh empty directory, so a command's default output (runs/...) never reads
    or writes the checkout's own, e.g. what `borl run lift` left there."""
    directory = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(directory)
    return directory


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures folder not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(
    params=[
        "cpu",
        pytest.param(
            "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
        ),
    ]
)
def device(request) -> str:
    """Each device a learning test runs on: the CPU everywhere, and CUDA where PyTorch sees one
    (scripts/device_check.sh runs the CUDA cases on a GPU machine)."""
    return request.param


@pytest.fixture
def one_thread():
    """Small networks gain little from a second thread and lose 10x when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def env(request):
    """The environment of the test module's TASK, built once per module and closed after it."""
    made = request.module.TASK.make_env()
    yield made
    made.close()
