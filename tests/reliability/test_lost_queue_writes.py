"""A queue that lost its last writes never makes the sessionizer skip new events.

Found as an operator would: a ``clickport dev`` process killed with SIGKILL, its queue file
put back to an older copy and its ``-wal``/``-shm`` removed (what an OS crash under
``synchronous=NORMAL``, or restoring an older data dir, leaves). The queue then handed out
offsets that stored sessions had already applied, and new events on those sessions were
taken for replays: 87 of 100 were silently not stored. Now every new event is stored, the
events still in the old file keep their stream, and the start says so in its log.
"""

from __future__ import annotations

import pathlib
import signal
import sqlite3

import httpx
import orjson
from helpers import new_sid, pageview

from .support import FIREFOX, SITE, DevProcess, stopped_store, wait_for

SESSIONS = 10
PAGE = "http://127.0.0.1/demo"


def post_round(dev: DevProcess, sids: list[str], round_no: int) -> int:
    accepted = 0
    with httpx.Client(base_url=dev.base, timeout=10) as client:
        for sid in sids:
            beacon = pageview(sid, f"{PAGE}?round={round_no}", SITE)
            response = client.post("/api/event", content=orjson.dumps(beacon),
                                   headers={"user-agent": FIREFOX, "content-type": "text/plain"})
            accepted += response.status_code == 202
    return accepted


def written(dev: DevProcess) -> int:
    return int(dev.readyz()["sessionizer"]["events_written"])


def test_new_events_after_lost_queue_writes_are_all_stored(tmp_path: pathlib.Path) -> None:
    data_dir, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    env = {"CLICKPORT_BATCH_MAX_SECONDS": "0.1", "CLICKPORT_RATE_LIMIT_PER_MINUTE": "0"}
    sids = [new_sid() for _ in range(SESSIONS)]
    queue = data_dir / "queue.sqlite3"
    older = tmp_path / "queue-older.sqlite3"

    dev = DevProcess(data_dir, logs, **env).start()
    try:
        assert post_round(dev, sids, 1) == SESSIONS
        assert wait_for(lambda: written(dev) == SESSIONS)
        with sqlite3.connect(queue) as source, sqlite3.connect(older) as copy:
            source.backup(copy)  # the older copy: round 1 only
        for round_no in (2, 3):
            assert post_round(dev, sids, round_no) == SESSIONS
        assert wait_for(lambda: written(dev) == 3 * SESSIONS)
        assert dev.proc is not None
        dev.proc.send_signal(signal.SIGKILL)
        dev.proc.wait(10)
        for leftover in (queue, queue.with_name(queue.name + "-wal"),
                         queue.with_name(queue.name + "-shm")):
            leftover.unlink(missing_ok=True)
        older.rename(queue)

        dev.start()
        assert dev.readyz()["queue_streams_started"] == 1
        for round_no in (4, 5):
            assert post_round(dev, sids, round_no) == SESSIONS
        assert wait_for(lambda: written(dev) == 2 * SESSIONS)
    finally:
        dev.stop()  # SIGTERM: flush, commit (also when an assertion failed)
    assert "lost writes" in dev.logs()

    with stopped_store(data_dir) as store:
        rows = store.query("SELECT count() AS events, uniqExact(url) AS urls FROM events FINAL "
                           "WHERE site_id = {s:String}", {"s": SITE})
        sessions = store.query("SELECT session_id, events, pageviews FROM sessions FINAL "
                               "WHERE site_id = {s:String}", {"s": SITE})
    assert rows == [{"events": 5 * SESSIONS, "urls": 5}]
    assert sorted(r["session_id"] for r in sessions) == sorted(sids)
    assert [(r["events"], r["pageviews"]) for r in sessions] == [(5, 5)] * SESSIONS
