"""Shared fixtures. Real components only: chDB on a temp dir, the disk queue, a real Kafka
broker (tests/kafka_broker.py) and Debian's Chromium; see tests/README.md."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def require_or_skip(env_var: str, reason: str) -> None:
    """Skip with a reason that says how to get the component, or fail when CI requires it."""
    if os.environ.get(env_var) == "1":
        pytest.fail(f"{reason} ({env_var}=1 turns this skip into a failure)")
    pytest.skip(reason)


@pytest.fixture
def data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "clickport-data"
    path.mkdir()
    return path
