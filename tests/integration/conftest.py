from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from services.adapters.chdb_store import ChdbStore
from services.core.store import Store


def _store_params() -> list[str]:
    params = ["chdb"]
    if os.environ.get("CLICKPORT_TEST_CLICKHOUSE"):
        params.append("clickhouse")
    return params


@pytest.fixture(scope="module", params=_store_params())
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Store]:
    if request.param == "chdb":
        opened: Store = ChdbStore(pathlib.Path(tmp_path_factory.mktemp("chdb")))
    else:  # pragma: no cover - needs a server
        from services.adapters.clickhouse_store import ClickHouseStore

        opened = ClickHouseStore(os.environ["CLICKPORT_TEST_CLICKHOUSE"])
    opened.migrate()
    yield opened
    opened.close()
