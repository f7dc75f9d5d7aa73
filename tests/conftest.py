"""Shared fixtures. Real components only: chDB on a temp dir, the disk queue, a real Kafka
broker (tests/kafka_broker.py) and Debian's Chromium; see tests/README.md."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import docker_answers, require_or_skip  # noqa: E402  (tests/ is on the path only from here)


@pytest.fixture
def data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "clickport-data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaEndpoint]:
    """A real Apache Kafka broker: ``CLICKPORT_TEST_KAFKA`` bootstrap servers, else
    testcontainers when a Docker engine answers, else the local JVM broker from Maven jars
    (deploy/kafka), else skip, or fail under ``CLICKPORT_REQUIRE_KAFKA=1``."""
    if bootstrap := os.environ.get("CLICKPORT_TEST_KAFKA"):
        yield KafkaEndpoint(bootstrap, None)
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.2").with_kraft() as container:
            yield KafkaEndpoint(container.get_bootstrap_server(), None)
        return
    import kafka_broker

    try:
        libs = kafka_broker.ensure_kafka_libs()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        require_or_skip("CLICKPORT_REQUIRE_KAFKA",
                        f"no Kafka broker: set CLICKPORT_TEST_KAFKA, start Docker, or install "
                        f"Java 17+ and Maven so deploy/kafka/pom.xml can fetch the jars ({exc})")
    broker = kafka_broker.start_local_broker(libs)
    try:
        yield KafkaEndpoint(broker.bootstrap, broker)
    finally:
        broker.close()


@dataclass(frozen=True)
class KafkaEndpoint:
    bootstrap: str
    broker: Any  # kafka_broker.LocalBroker when we run it (fault tests can stop it), else None
