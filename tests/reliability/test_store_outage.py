"""The Store unavailable for a while on the embedded path (PRODUCT.md I5, S6; docs/delivery.md
"a failed write is retried with backoff while polling pauses; nothing is dropped").

The fault is injected into the real Store, on each Store in turn (chDB, and a ClickHouse
server): `Outage` is the Store with a switch that makes it raise `StoreUnavailable` for N
seconds, in three ways:

- ``insert``: every insert into ``events``/``sessions`` fails before writing;
- ``insert-lands``: the insert is written, then the call fails anyway (a timeout after the
  server committed: the retry must not store anything twice);
- ``everything``: every insert and every query fails (session reloads, goal and site
  refreshes and API reads included).

Beacons keep arriving before, during and after the outage. Ingest keeps answering 202 (it
never waits on the Store); the sessionizer stops consuming (the queue grows), retries, and
catches up. Then the ``events`` table holds exactly the beacons answered 2xx, once each, and
every stored session equals the pure fold of `apply_event` over its events read back from the
table (in the order they were posted, with the offsets the queue gave them): the state a run
without the fault produces (tests/integration/test_sessionizer_properties.py proves the
sessionizer equals that fold without faults).
"""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from helpers import STORES, store_settings

import services.embedded.app as embedded_app
from services.adapters.chdb_store import ChdbStore
from services.adapters.clickhouse_store import ClickHouseStore
from services.core import sites as site_rules
from services.core.settings import Settings, StoreKind
from services.core.store import Row, StoreUnavailable

from .session_fold import beacons, fold, stored_sessions
from .support import LONG, SITE, EmbeddedRun, wait_for, write_figures

OUTAGE_SECONDS = 20.0 if LONG else 3.0
SESSIONS = 60 if LONG else 30
pytestmark = pytest.mark.timeout(600 if LONG else 180)


class Outage:
    """A real Store, made unavailable on demand (fault injection, not a stand-in): mixed
    into ChdbStore or ClickHouseStore by `outage_store`."""

    mode = "insert"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.down_until = 0.0
        self.failures = 0
        self._count_lock = threading.Lock()

    def down(self) -> bool:
        return time.monotonic() < self.down_until

    def _fail(self) -> None:
        with self._count_lock:
            self.failures += 1
        raise StoreUnavailable("injected outage: the Store is unreachable")

    def insert(self, table: str, rows: Sequence[Row], *, dedup_token: str = "") -> None:
        if self.down() and (self.mode == "everything" or table in ("events", "sessions")):
            if self.mode == "insert-lands":
                super().insert(table, rows, dedup_token=dedup_token)  # type: ignore[misc]
            self._fail()
        super().insert(table, rows, dedup_token=dedup_token)  # type: ignore[misc]

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if self.down() and self.mode == "everything":
            self._fail()
        result: list[dict[str, Any]] = super().query(sql, params)  # type: ignore[misc]
        return result


class ChdbOutage(Outage, ChdbStore):
    pass


class ClickHouseOutage(Outage, ClickHouseStore):
    pass


def outage_store(settings: Settings) -> Outage:
    """`make_store` with the outage switch, for the embedded app."""
    if settings.store is StoreKind.CLICKHOUSE:
        return ClickHouseOutage(settings.clickhouse_url)
    return ChdbOutage(settings.data_dir / "chdb")


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
               ) -> dict[str, Any]:
    """The embedded app's Store settings, its Store made by `outage_store`."""
    monkeypatch.setattr(embedded_app, "make_store", outage_store)
    return store_settings(request)


@pytest.mark.parametrize("mode", ["insert", "insert-lands", "everything"])
def test_store_outage_stops_consumption_then_catches_up_without_loss(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, mode: str,
        store_kind: dict[str, Any]) -> None:
    monkeypatch.setattr(Outage, "mode", mode)
    plan = beacons(SESSIONS)
    third = len(plan) // 3
    with EmbeddedRun(tmp_path / "data", **store_kind) as run:
        store: Outage = run.store
        assert isinstance(store, Outage)
        goal = run.client.post("/api/goals", headers={"x-api-key": run.key}, json={
            "name": "Amazon", "type": "click",
            "conditions": [{"field": "domain", "operator": "contains", "value": "amazon"}]})
        assert goal.status_code == 201, goal.text
        sessionizer = run.parts.sessionizer
        assert wait_for(lambda: len(sessionizer.goals) == 1, 10)

        answered = 0

        def post(beacon: dict[str, Any]) -> None:
            nonlocal answered
            response = run.post_json(beacon)
            assert response.status_code == 202 and response.json() == {"ok": True}, (
                response.status_code, response.text)
            answered += 1

        for beacon in plan[:third]:  # healthy
            post(beacon)
        assert run.wait_until_stored(answered)

        store.down_until = time.monotonic() + OUTAGE_SECONDS  # the outage begins
        during = plan[third:2 * third]
        pause = OUTAGE_SECONDS * 0.8 / len(during)
        consumed_when_blocked = None
        max_pending = 0
        for i, beacon in enumerate(during):
            post(beacon)
            max_pending = max(max_pending, run.parts.transport.pending())
            if consumed_when_blocked is None and sessionizer.stats.store_retries:
                consumed_when_blocked = sessionizer.stats.consumed  # it is in its retry loop
            time.sleep(pause if i < len(during) - 1 else 0)
        if consumed_when_blocked is None:
            assert wait_for(lambda: sessionizer.stats.store_retries, OUTAGE_SECONDS)
            consumed_when_blocked = sessionizer.stats.consumed
        while store.down_until - time.monotonic() > 0.2:
            max_pending = max(max_pending, run.parts.transport.pending())
            time.sleep(0.05)
        consumed_at_outage_end = sessionizer.stats.consumed  # sampled just before the end
        while store.down():
            time.sleep(0.01)
        ended = time.monotonic()

        for beacon in plan[2 * third:]:  # after the outage, while it catches up
            post(beacon)
        assert run.wait_until_stored(answered, seconds=60), (
            f"{answered} answered 202, {run.stored_events()} stored")
        caught_up = time.monotonic() - ended

        assert consumed_when_blocked is not None
        assert consumed_at_outage_end == consumed_when_blocked, "it kept consuming while down"
        assert max_pending >= len(during) // 2, "the queue did not hold the events meanwhile"
        assert store.failures > 0 and sessionizer.stats.store_retries > 0
        assert sessionizer.stats.corrupt == 0 and sessionizer.running

        expected = fold(store, run.parts.transport.stream)
        assert len(expected) == SESSIONS
        assert stored_sessions(store) == expected
        raw = store.query("SELECT count() AS n, uniqExact(event_id) AS ids FROM events")[0]
        final = store.query("SELECT count() AS n FROM events FINAL")[0]["n"]
        assert int(final) == answered == len(plan)
        converted = sum(s.has_converted for s in expected.values())
        assert converted == SESSIONS // 2  # the odd sessions clicked amazon.com
        on = store_kind.get("store", StoreKind.CHDB).value
        write_figures(f"store-outage-{mode}-{on}", {
            "mode": mode, "store": on, "outage_seconds": OUTAGE_SECONDS, "events_sent": len(plan),
            "answered_2xx": answered, "events_stored": int(final),
            "physical_duplicate_rows": int(raw["n"]) - int(raw["ids"]),
            "duplicates_after_final": int(final) - int(raw["ids"]),
            "sessions": len(expected), "store_failures_injected": store.failures,
            "sessionizer_retries": sessionizer.stats.store_retries,
            "max_queue_pending": max_pending, "catch_up_seconds": round(caught_up, 2),
        })


def test_the_api_answers_503_while_the_store_is_down_and_ingest_keeps_accepting(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
        store_kind: dict[str, Any]) -> None:
    monkeypatch.setattr(Outage, "mode", "everything")
    with EmbeddedRun(tmp_path / "data", **store_kind) as run:
        store: Outage = run.store
        cached = {"x-api-key": run.key}
        assert run.client.get("/api/kpis", headers=cached).status_code == 200
        fresh = {"x-api-key": site_rules.create_key(store, SITE)}
        store.down_until = time.monotonic() + 60
        page = {"t": "p", "d": SITE, "u": "https://demo.localhost/", "sid": "down" * 6}
        assert run.post_json(page).json() == {"ok": True}  # ingest never waits on the Store
        answers = [run.client.get("/api/kpis", headers=headers) for headers in (cached, fresh)]
        store.down_until = 0.0
        assert run.wait_until_stored(1)
        assert run.client.get("/api/kpis", headers=fresh).status_code == 200
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"error": "storage unavailable, retry later"}
