"""Shared fixtures. Real components only: chDB on a temp dir, the disk queue, a real Kafka
broker (tests/kafka_broker.py), a real ClickHouse server (tests/clickhouse_server.py) and
Debian's Chromium; see tests/README.md."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import uuid
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


@pytest.fixture(scope="session")
def clickhouse() -> Iterator[ClickHouseEndpoint]:
    """A real ClickHouse server: ``CLICKPORT_TEST_CLICKHOUSE`` (a clickhouse:// URL), else
    testcontainers when a Docker engine answers, else a local server from chDB's LocalServer
    (tests/clickhouse_server.py), else skip, or fail under ``CLICKPORT_REQUIRE_CLICKHOUSE=1``.
    Each user takes a database of its own with `ClickHouseEndpoint.fresh_url`."""
    if url := os.environ.get("CLICKPORT_TEST_CLICKHOUSE"):
        yield ClickHouseEndpoint(url, None)
        return
    if docker_answers():
        from testcontainers.clickhouse import ClickHouseContainer

        with ClickHouseContainer("clickhouse/clickhouse-server:25.8") as container:
            yield ClickHouseEndpoint(container.get_connection_url(), None)
        return
    import clickhouse_server

    try:
        server = clickhouse_server.start_local_server()
    except (RuntimeError, TimeoutError, OSError) as exc:
        require_or_skip("CLICKPORT_REQUIRE_CLICKHOUSE",
                        f"no ClickHouse server: set CLICKPORT_TEST_CLICKHOUSE=clickhouse://"
                        f"user:pw@host:9000/db, start Docker, or install the project's chdb "
                        f"so tests/clickhouse_server.py can run one ({exc})")
    try:
        yield ClickHouseEndpoint(server.url(), server)
    finally:
        server.close()


@dataclass(frozen=True)
class ClickHouseEndpoint:
    url: str
    server: Any  # clickhouse_server.LocalClickHouse when we run it (fault tests), else None

    def fresh_url(self, prefix: str = "clickport_test") -> str:
        """The server's URL with a new database name (created by the Store's migrate)."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{prefix}_{uuid.uuid4().hex[:12]}"))
