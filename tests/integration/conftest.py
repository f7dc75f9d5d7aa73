from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from services.adapters.chdb_store import ChdbStore
from services.core.store import Store


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Store]:
    """Every Store the machine can give: chDB always; a ClickHouse server from
    ``CLICKPORT_TEST_CLICKHOUSE`` (a clickhouse:// URL) or testcontainers when Docker runs."""
    if request.param == "chdb":
        opened: Store = ChdbStore(pathlib.Path(tmp_path_factory.mktemp("chdb")))
        opened.migrate()
        yield opened
        opened.close()
        return
    yield from _clickhouse_server()


def _clickhouse_server() -> Iterator[Store]:
    from helpers import docker_answers

    from services.adapters.clickhouse_store import ClickHouseStore

    url = os.environ.get("CLICKPORT_TEST_CLICKHOUSE")
    if url:
        opened = ClickHouseStore(url)
        opened.migrate()
        yield opened
        opened.close()
        return
    if not docker_answers():
        pytest.skip("no ClickHouse server: set CLICKPORT_TEST_CLICKHOUSE=clickhouse://user:pw@"
                    "host:9000/db or run a Docker engine (testcontainers); chDB ran these")
    from testcontainers.clickhouse import ClickHouseContainer

    with ClickHouseContainer("clickhouse/clickhouse-server:25.8") as server:
        opened = ClickHouseStore(server.get_connection_url())
        opened.migrate()
        yield opened
        opened.close()
