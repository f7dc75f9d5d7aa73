"""Shared fixtures. Real components only: chDB on a temp dir, the disk queue, a real Kafka
broker (tests/kafka_broker.py) and Debian's Chromium; see tests/README.md."""

from __future__ import annotations

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture
def data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "clickport-data"
    path.mkdir()
    return path
