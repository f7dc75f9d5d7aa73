"""The sessionizer never wedges and never drops (docs/delivery.md, "Dead letters"), on the
production path: Apache Kafka and a ClickHouse server, with the real ``clickport`` commands
as processes (``kafka create-topics``, ``migrate``, ``sessionizer``, ``dlq ...``).

- A batch the server refuses for good (a CHECK constraint that one event violates) is set
  aside with its reason, and so is a corrupt message; the partitions go on (events sent after
  it are stored); ``/readyz`` stays 200 but says ``degraded`` with the pending count.
- After the fix, ``clickport dlq replay`` stores every refused event exactly once: the events
  table holds each event once (``FINAL``), and every session row equals the pure fold of
  `apply_event` over the topic in the order the sessionizer applied it (the refused batch's
  originals left out, their replayed copies at their new offsets). The corrupt message comes
  back as corrupt, and ``clickport dlq drop --yes`` discards it.
- A Store that is unreachable for a while is retried, logged once for the whole streak,
  shown on ``/readyz`` (503 past the grace) and in the metrics, and nothing is set aside.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from helpers import require_or_skip, wait_until
from starlette.testclient import TestClient
from threads import free_port
from topics import read_topic

from services.adapters.clickhouse_store import ClickHouseStore
from services.adapters.disk_queue import DiskQueueTransport
from services.adapters.kafka_transport import KafkaTransport
from services.core.event import Event, decode_event, encode_event
from services.core.rows import SESSION_COLUMNS_FOR_RELOAD, session_from_row
from services.core.session import SessionState, apply_event
from services.core.settings import Settings
from services.core.store import Store
from services.core.transport import stream_id
from services.servers.sessionizer_server import build_sessionizer_app

SITE = "dlq.example"
PARTITIONS = 2
NO_EVIL = "ALTER TABLE events ADD CONSTRAINT no_evil CHECK url NOT LIKE '%evil%'"
EVIL_FIXED = "ALTER TABLE events DROP CONSTRAINT no_evil"
CORRUPT = b"\xc1 is never a MessagePack byte"


def event_for(sid: str, step: int, url: str = "") -> Event:
    """The step-th event of a session: pageview, click, engagement, in turn."""
    page = url or f"https://{SITE}/p{step % 3}"
    kind = ("pageview", "click", "engagement")[step % 3]
    extra: dict[str, Any] = {}
    if kind == "click":
        extra = {"click_url": f"https://dest{step % 2}.example/x", "click_text": "go",
                 "click_domain": f"dest{step % 2}.example", "click_kind": "primary"}
    elif kind == "engagement":
        extra = {"scroll": 7 * step % 100, "visible_ms": 1_000 * step}
    return Event(id=uuid.uuid4().hex, site=SITE, sid=sid, ts=int(time.time() * 1000),
                 kind=kind, url=page, path=urlsplit(page).path, **extra)  # type: ignore[arg-type]


def stored(store: Store) -> tuple[dict[str, SessionState], int, int]:
    """Session rows, event rows (FINAL) and distinct event ids of the site."""
    rows = store.query(f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL "
                       "WHERE site_id = {s:String}", {"s": SITE})
    counts = store.query("SELECT count() AS n, uniqExact(event_id) AS ids FROM events FINAL "
                         "WHERE site_id = {s:String}", {"s": SITE})[0]
    return ({r["session_id"]: session_from_row(r) for r in rows}, int(counts["n"]),
            int(counts["ids"]))


def events_stored(store: Store) -> int:
    return stored(store)[1]


def clickport(env: dict[str, str], *args: str, check: bool = True
              ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=180)
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def dlq_list(env: dict[str, str]) -> dict[str, Any]:
    listed: dict[str, Any] = json.loads(clickport(env, "dlq", "list", "--json").stdout)
    return listed


@contextmanager
def sessionizer_process(env: dict[str, str], log_path: pathlib.Path) -> Iterator[str]:
    """``clickport sessionizer`` on a free port until the block ends (then SIGTERM)."""
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", "sessionizer", "--port",
                                 str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            return httpx.get(base + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 90, "the sessionizer process to be ready")
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def metric(base: str, line_start: str) -> float:
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{line_start} not in /metrics")


def publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    async def send() -> None:
        transport = KafkaTransport(bootstrap, topic)
        await transport.start()
        try:
            for key, value in messages:
                await transport.publish(key, value)
        finally:
            await transport.stop()

    asyncio.run(send())


def published(events: list[Event]) -> list[tuple[bytes, bytes]]:
    return [(e.sid.encode(), encode_event(e)) for e in events]


def fold(records: list[tuple[int, int, bytes, bytes]], topic: str,
         left_out: set[tuple[int, int]]) -> dict[str, SessionState]:
    """The sessions a run without the refusal makes of what the sessionizer applied: the
    topic in offset order per partition (a session lives on one), without the positions that
    were set aside (the replay put copies of them later in the topic) and corrupt messages."""
    states: dict[str, SessionState] = {}
    for partition, offset, _, value in sorted(records):
        if (partition, offset) in left_out or value == CORRUPT:
            continue
        event = decode_event(value)
        states[event.sid], _ = apply_event(states.get(event.sid), event, offset,
                                           stream=stream_id(topic, partition))
    return states


def test_a_refused_batch_is_set_aside_then_replayed_exactly_once_kafka_clickhouse(
        kafka: Any, clickhouse: Any, tmp_path: pathlib.Path) -> None:
    topic = f"clickport.test.{uuid.uuid4().hex[:8]}"
    url = clickhouse.fresh_url("clickport_dlq")
    env = {**os.environ, "CLICKPORT_TRANSPORT": "kafka", "CLICKPORT_STORE": "clickhouse",
           "CLICKPORT_CLICKHOUSE_URL": url, "CLICKPORT_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "CLICKPORT_KAFKA_TOPIC": topic, "CLICKPORT_KAFKA_PARTITIONS": str(PARTITIONS),
           "CLICKPORT_KAFKA_GROUP": f"g-{uuid.uuid4().hex[:8]}",
           "CLICKPORT_DATA_DIR": str(tmp_path), "CLICKPORT_BATCH_MAX_SECONDS": "0.2"}
    topics = clickport(env, "kafka", "create-topics").stdout
    assert f"topic {topic}.dlq (1 partition" in topics and "created" in topics
    clickport(env, "migrate")
    store = ClickHouseStore(url)
    store.query(NO_EVIL)
    sids = [f"dlq{i:02d}" + "x" * 17 for i in range(6)]
    good: list[Event] = []  # every decodable event published, in order

    def send(events: list[Event], extra: list[tuple[bytes, bytes]] | None = None) -> None:
        good.extend(events)
        publish(kafka.bootstrap, topic, [*published(events), *(extra or [])])

    try:
        with sessionizer_process(env, tmp_path / "sessionizer.log") as base:
            send([event_for(sid, step) for step in range(2) for sid in sids])
            wait_until(lambda: events_stored(store) == len(good), 90, "the first events")

            # One batch's worth: a step for every session, one of them evil, and a corrupt
            # message. The sessions already have stored state and go on after it.
            send([event_for(sid, 2, f"https://{SITE}/evil" if sid == sids[3] else "")
                  for sid in sids], [(b"corrupt", CORRUPT)])

            def set_aside() -> dict[str, Any] | None:
                listed = dlq_list(env)
                refused = [e for e in listed["entries"] if e["reason"] == "store_rejected"]
                corrupt = [e for e in listed["entries"] if e["reason"] == "corrupt"]
                whole = events_stored(store) + len(refused) == len(good)
                return listed if refused and corrupt and whole else None

            before = wait_until(set_aside, 90, "the refused batch and the corrupt message to "
                                               "be set aside")
            refused = [e for e in before["entries"] if e["reason"] == "store_rejected"]
            assert before["pending"] == len(before["entries"]) == len(refused) + 1
            assert any(e["event"]["url"].endswith("/evil") for e in refused)
            assert all("no_evil" in e["detail"] for e in refused)
            assert [e["event"] for e in before["entries"] if e["reason"] == "corrupt"] == [None]
            assert all(e["event"]["site"] == SITE for e in refused)

            # The partitions go on: later events of the same sessions (reloaded without the
            # refused batch) and of a new session are stored.
            send([event_for(sid, step) for step in (3, 4) for sid in [*sids, "dlqnew" + "y" * 16]])
            wait_until(lambda: events_stored(store) == len(good) - len(refused), 90,
                       "the events sent after the refused batch")

            def degraded() -> dict[str, Any] | None:
                answer = httpx.get(base + "/readyz", timeout=10)
                body: dict[str, Any] = answer.json()
                assert answer.status_code == 200, body  # still ready
                letters = body["dead_letters"]
                return body if letters["pending"] == before["pending"] else None

            body = wait_until(degraded, 30, "/readyz to count the dead letters")
            assert body["status"] == "degraded" and body["store"] == "ok"
            assert "clickport dlq replay" in body["dead_letters"]["run"]
            assert metric(base, 'clickport_sessionizer_dead_lettered_total{reason="store_rejected"}'
                          ) == len(refused)
            assert metric(base, 'clickport_sessionizer_dead_lettered_total{reason="corrupt"}') == 1
            assert metric(base, "clickport_sessionizer_dead_letters_pending") == before["pending"]

            store.query(EVIL_FIXED)
            replay = clickport(env, "dlq", "replay").stdout
            assert f"replayed {before['pending']} dead letters" in replay
            wait_until(lambda: events_stored(store) == len(good), 90, "the replayed events")

            # The corrupt message is still corrupt: set aside again, from its new offset.
            after = wait_until(lambda: (listed := dlq_list(env))["pending"] == 1 and listed,
                               60, "the replayed corrupt message to be set aside again")
            [again] = after["entries"]
            assert again["reason"] == "corrupt" and again["event"] is None
            refused_drop = clickport(env, "dlq", "drop", check=False)
            assert refused_drop.returncode == 1 and "--yes" in refused_drop.stderr
            assert "Traceback" not in refused_drop.stderr
            assert "clickport: drop discards 1 dead letters" in refused_drop.stderr
            assert "dropped 1 dead letters" in clickport(env, "dlq", "drop", "--yes").stdout
            assert "nothing to replay" in clickport(env, "dlq", "replay").stdout
            assert dlq_list(env) == {"pending": 0, "entries": []}
            wait_until(lambda: httpx.get(base + "/readyz", timeout=10).json()["status"] == "ok",
                       30, "/readyz to be ok again")

            records = asyncio.run(read_topic(kafka.bootstrap, topic, PARTITIONS,
                                             "read_committed"))
            assert len(records) == len(good) + len(refused) + 2  # copies, and corrupt twice
            left_out = {(e["partition"], e["offset"]) for e in before["entries"]}
            expected = fold(records, topic, left_out)
            assert set(expected) == {e.sid for e in good}
            wait_until(lambda: stored(store)[0] == expected, 60,
                       "session rows to equal the fold")
        states, events, ids = stored(store)
        assert events == ids == len(good)  # each event exactly once
        assert sum(s.events for s in states.values()) == len(good)
    finally:
        store.close()


def test_an_unreachable_store_is_retried_logged_once_and_shown_not_set_aside(
        clickhouse: Any, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    server = clickhouse.server
    if server is None:
        # an external or Docker server cannot be stopped from here; CI must not skip this
        require_or_skip("CLICKPORT_REQUIRE_CLICKHOUSE",
                        "needs the local ClickHouse server to stop and restart it (unset "
                        "CLICKPORT_TEST_CLICKHOUSE so the fixture starts one)")
    caplog.set_level(logging.INFO, logger="clickport.sessionizer")
    url = clickhouse.fresh_url("clickport_outage")
    store = ClickHouseStore(url)  # the worker's; the app closes it
    store.migrate()
    transport = DiskQueueTransport(tmp_path / "queue.sqlite3", max_pending=1000)
    asyncio.run(transport.start())
    settings = Settings.from_env({}, batch_max_seconds=0.1, kafka_group="outage")
    app = build_sessionizer_app(settings, transport, store)
    worker = app.state.sessionizer
    reader = ClickHouseStore(url)
    sid = "outage" + "z" * 16
    try:
        with TestClient(app) as client:
            def send(step: int) -> None:
                event = event_for(sid, step)
                client.portal.call(transport.publish, event.sid.encode(), encode_event(event))

            for step in range(3):
                send(step)
            wait_until(lambda: events_stored(reader) == 3, 60, "the first events")
            assert client.get("/readyz").json()["store"] == "ok"

            server.stop()
            try:
                for step in range(3, 6):
                    send(step)

                def not_ready() -> dict[str, Any] | None:
                    answer = client.get("/readyz")
                    return answer.json() if answer.status_code == 503 else None

                body = wait_until(not_ready, 90, "/readyz to say the store is failing")
                assert body["store"].startswith("retrying since ") and body["ready"] is False
                assert "unreachable" in body["store"]
                wait_until(lambda: worker.stats.store_retries >= 2, 60, "a second retry")
                lines = client.get("/metrics").text.splitlines()
                failing = next(line for line in lines
                               if line.startswith("clickport_sessionizer_store_failing_seconds "))
                assert float(failing.split()[1]) > 0
            finally:
                server.start()
            wait_until(lambda: events_stored(reader) == 6, 90, "every event after the outage")
            wait_until(lambda: client.get("/readyz").status_code == 200, 30, "ready again")
            body = client.get("/readyz").json()
            assert body["store"] == "ok" and body["status"] == "ok"
            assert body["dead_letters"] == {"pending": 0, "writes": "ok"}
            assert worker.stats.dead_lettered == {} and worker.stats.corrupt == 0
            assert client.portal.call(transport.dead_letters().pending) == 0
    finally:
        reader.close()
        asyncio.run(transport.stop())
    records = [r for r in caplog.records if r.name == "clickport.sessionizer"]
    started = [r for r in records if r.levelno == logging.WARNING and "store failing" in
               r.getMessage()]
    ended = [r for r in records if r.levelno == logging.INFO and "store recovered after" in
             r.getMessage()]
    assert len(started) == 1 and len(ended) == 1, [r.getMessage() for r in records]
    assert worker.stats.store_retries >= 2  # many retries, one streak, two lines
    assert f"after {worker.stats.store_retries} retries" in ended[0].getMessage()
