"""Secrets are masked where an operator or a client could see them (STYLE.md 9, PRODUCT.md
A1): the Settings repr, the Store's description on ``/readyz``, the errors and logs of a
Store that cannot be reached, and the API's answers. The ClickHouse server here is a closed
loopback port, so the driver really connects, is refused, and reports it."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from starlette.testclient import TestClient

import services.adapters.clickhouse_store as clickhouse_store
from services.adapters.clickhouse_store import ClickHouseStore
from services.core.settings import Settings
from services.core.store import StoreUnavailable
from services.servers.api_server import build_api_app

pytestmark = pytest.mark.timeout(120)

PASSWORD = "Sup3r-s3cret-pw"
PEPPER = "pepper-7d1e-secret"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chain(exc: BaseException | None) -> str:
    """Every message and repr along an exception's cause/context chain."""
    seen = []
    while exc is not None:
        seen += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(seen)


def test_settings_repr_masks_every_secret() -> None:
    settings = Settings.from_env({
        "CLICKPORT_CLICKHOUSE_URL": f"clickhouse://admin:{PASSWORD}@db.internal:9000/ck",
        "CLICKPORT_VISITOR_SALT_SECRET": PEPPER, "CLICKPORT_STORE": "clickhouse"})
    for shown in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert PASSWORD not in shown and PEPPER not in shown and "admin:" not in shown
        assert shown.count("***") == 2
    assert settings.clickhouse_url.endswith("/ck")  # still usable by the code that needs it


def test_an_unreachable_clickhouse_never_shows_its_password(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(clickhouse_store, "RETRY_DELAYS", (0.0,))
    port = closed_port()
    store = ClickHouseStore(f"clickhouse://admin:{PASSWORD}@127.0.0.1:{port}/default")
    assert store.describe() == f"clickhouse 127.0.0.1:{port}"
    with pytest.raises(StoreUnavailable) as failed:
        store.query("SELECT 1")
    assert f"127.0.0.1:{port}" in str(failed.value)  # it says where
    assert PASSWORD not in chain(failed.value)
    with pytest.raises(StoreUnavailable) as failed_insert:
        store.insert("events", [{"site_id": "x"}])
    assert PASSWORD not in chain(failed_insert.value)

    with TestClient(build_api_app(store), raise_server_exceptions=False) as client:
        answers: list[Any] = [client.get("/readyz"), client.get("/metrics"),
                              client.get("/api/kpis", headers={"x-api-key": "ck_" + "k" * 32})]
    assert answers[0].status_code == 503 and "unreachable" in answers[0].json()["store"]
    for answer in answers:
        assert PASSWORD not in answer.text and "admin" not in answer.text
    assert caplog.records and PASSWORD not in caplog.text  # messages and tracebacks
