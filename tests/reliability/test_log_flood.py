"""Logs under a fault that repeats per request (issue #9, item 7): a full disk made ingest
log one WARNING per 503, 2,791 lines in one run and 3,000 in 15 s. Here the real disk queue
fills up (SQLite's own "database or disk is full", from a page limit set on its file) while
3,000 beacons arrive over 15 s of ingest's clock, and the query API answers 503 for a
ClickHouse server that refuses connections: each repeated cause is logged a bounded number
of times, and those lines still name the cause and count what they stand for."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import re
import socket
from collections.abc import Iterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from services.adapters import clickhouse_store
from services.adapters.clickhouse_store import ClickHouseStore
from services.adapters.disk_queue import DiskQueueTransport
from services.ingest.app import IngestStats, ingest_routes
from services.servers.api_server import build_api_app

from .support import FIREFOX, SITE

pytestmark = pytest.mark.timeout(120)

START_MS = 1_795_000_000_000
CAUSE = "answering 503: publish failed: embedded queue write failed: database or disk is full"
SUMMARY = re.compile(re.escape(CAUSE) + r" \((\d+) more in the last (\d+) s\)")


@pytest.fixture
def full_queue(tmp_path: pathlib.Path) -> Iterator[DiskQueueTransport]:
    queue = DiskQueueTransport(tmp_path / "queue.sqlite3", 1_000_000)
    asyncio.run(queue.start())
    db = queue._require_open()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow: the disk is full
    yield queue
    asyncio.run(queue.stop())


def ingest_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "clickport.ingest"]


def test_a_full_disk_logs_each_cause_a_bounded_number_of_times_with_its_count(
        full_queue: DiskQueueTransport, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    clock = [START_MS]
    stats = IngestStats()
    app = Starlette(routes=ingest_routes(
        full_queue, {SITE}, max_body_bytes=8192, rate_limit_per_minute=0, trusted_proxies=(),
        bot_filter=True, salts=lambda ms: b"k" * 32, stats=stats, now_ms=lambda: clock[0]))

    async def post_all(count: int, step_ms: int) -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 50000))
        statuses = []
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            for i in range(count):
                beacon = {"t": "p", "d": SITE, "u": f"https://{SITE}/p{i}",
                          "sid": f"flood{i:017d}"}
                response = await client.post("/api/event", content=orjson.dumps(beacon),
                                             headers={"user-agent": FIREFOX})
                statuses.append(response.status_code)
                clock[0] += step_ms
        return statuses

    statuses = asyncio.run(post_all(3000, 5))  # 3,000 beacons over 15 s
    accepted = stats.accepted  # what still fitted in the file's last pages
    assert accepted < 100 and statuses == [202] * accepted + [503] * (3000 - accepted)
    lines = ingest_messages(caplog)
    assert len(lines) <= 3, lines
    assert lines[0] == CAUSE
    summaries = [SUMMARY.fullmatch(line) for line in lines[1:]]
    assert summaries and all(summaries), lines
    assert [int(m.group(2)) for m in summaries if m] == [10] * len(summaries)

    clock[0] += 11_000  # the fault goes on after a pause: the rest are counted, none lost
    assert asyncio.run(post_all(1, 0)) == [503]
    lines = ingest_messages(caplog)
    counted = 1 + sum(int(m.group(1)) for m in map(SUMMARY.fullmatch, lines[1:]) if m)
    assert counted == stats.unavailable == 3001 - accepted and len(lines) <= 4, lines


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_store_logs_its_503s_a_bounded_number_of_times(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(clickhouse_store, "RETRY_DELAYS", (0.0,))
    store = ClickHouseStore(f"clickhouse://default:@127.0.0.1:{closed_port()}/default")
    with TestClient(build_api_app(store), raise_server_exceptions=False) as client:
        answers = [client.get("/api/kpis", headers={"x-api-key": "ck_" + "k" * 32}).status_code
                   for _ in range(200)]
    assert answers == [503] * 200
    lines = [r.getMessage() for r in caplog.records if r.name == "clickport.api"]
    assert 1 <= len(lines) <= 2, lines
    assert lines[0].startswith("key lookup failed, answering 503: ")
    assert "127.0.0.1" in lines[0]  # the cause: where the Store is and what it said
