"""Shared fixtures: the repository's neighbour folder of files written by other projects' tools."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures folder not found at {FIXTURES}")
    return FIXTURES
