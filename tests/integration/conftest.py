from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from services.adapters.chdb_store import ChdbStore
from services.core.store import Store


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Store]:
    """Every Store: chDB in process, and a ClickHouse server (the `clickhouse` fixture), each
    on a fresh data dir or database of its own."""
    opened: Store
    if request.param == "chdb":
        opened = ChdbStore(pathlib.Path(tmp_path_factory.mktemp("chdb")))
    else:
        from services.adapters.clickhouse_store import ClickHouseStore

        opened = ClickHouseStore(request.getfixturevalue("clickhouse").fresh_url())
    opened.migrate()
    yield opened
    opened.close()
