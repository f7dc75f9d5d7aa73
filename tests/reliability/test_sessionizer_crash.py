"""The sessionizer loop crashes and is started again, without losing or doubling anything.

Found as the issue found it: the disk queue on a nearly full file system. SQLite's commit
of the group's offset raised ``database or disk is full``, which ended the sessionizer task
with no log line, and nothing started it again. Here the queue lives on a small tmpfs (chDB
is bind-mounted from the ordinary disk, so only the queue's file system fills up): a batch
is applied and written to the Store, the disk fills, and the batch's offset commit fails in
SQLite itself. The loop must be logged with its traceback, counted, and started again after a
backoff, from the last committed offset with nothing in memory: the replayed batch is
skipped by the stored sessions' watermark once the disk has room again, and every event
answered 2xx is stored once, every session equal to the fault-free fold.

``clickport sessionizer`` gets the same supervisor: there a loop that cannot reach Kafka at
start (the consumer's start raises) used to end the task for good while ``/healthz`` stayed
200, so nothing would ever restart the process.
"""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys
from typing import Any

import httpx
import pytest
from helpers import metric_value, wait_until

from .mounts import bound, fill, tmpfs
from .session_fold import beacons, fold, stored_sessions
from .support import ROOT, EmbeddedRun, free_port, wait_for

# The batch timer: long enough for the test to fill the disk after posting the second round
# and before that batch is written and committed (checked, not assumed: see below).
BATCH_SECONDS = 4.0
SESSIONS = 12
pytestmark = pytest.mark.timeout(120)


def test_a_commit_that_fails_on_a_full_disk_restarts_the_loop_without_loss(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="clickport")
    plan = beacons(SESSIONS, prefix="crash")
    third = len(plan) // 3
    data = tmp_path / "data"
    with tmpfs(data, "16m"), bound(tmp_path / "chdb", data / "chdb"), \
            EmbeddedRun(data, batch_max_seconds=BATCH_SECONDS) as run:
        sessionizer, transport = run.parts.sessionizer, run.parts.transport
        answered = 0

        def post(beacon: dict[str, Any]) -> int:
            nonlocal answered
            status = run.post_json(beacon).status_code
            answered += status == 202
            return status

        assert [post(b) for b in plan[:third]] == [202] * third
        assert run.wait_until_stored(answered)
        assert [post(b) for b in plan[third:2 * third]] == [202] * third
        filler = fill(data)
        assert transport.pending() > 0, "the batch was committed before the disk filled"

        # The batch is written to chDB, then its commit fails in SQLite: the loop ends.
        assert wait_for(lambda: not sessionizer.running, 30)
        filler.unlink()  # an operator frees some space
        for beacon in plan[2 * third:]:
            assert post(beacon) == 202
        assert run.wait_until_stored(answered, seconds=60), (
            f"{answered} answered 202, {run.stored_events()} stored")
        assert wait_for(lambda: transport.pending() == 0, 30)

        supervisor = run.parts.supervisor
        assert supervisor.restarts >= 1
        # The replayed batch was already in the Store: skipped by the watermark, not re-applied.
        assert sessionizer.stats.replayed_skipped >= third
        assert stored_sessions(run.store) == fold(run.store, transport.stream)
        rows = run.store.query("SELECT count() AS n, uniqExact(event_id) AS ids FROM events")[0]
        assert int(rows["n"]) == int(rows["ids"]) == answered == len(plan)

        readyz = run.client.get("/readyz").json()
        assert readyz["sessionizer_restarts"]["count"] == supervisor.restarts
        assert "database or disk is full" in readyz["sessionizer_restarts"]["last_error"]
        metrics = run.client.get("/metrics").text
        assert metric_value(metrics, "clickport_sessionizer_restarts_total") == supervisor.restarts

    crashes = [r for r in caplog.records if "sessionizer loop crashed" in r.getMessage()]
    assert crashes and crashes[0].levelno == logging.ERROR
    assert crashes[0].exc_info is not None  # with its traceback
    assert "database or disk is full" in str(crashes[0].exc_info[1])


def test_clickport_sessionizer_restarts_a_loop_that_cannot_reach_kafka(
        tmp_path: pathlib.Path) -> None:
    port, nobody = free_port(), free_port()
    log_path = tmp_path / "sessionizer.log"
    env = {**os.environ, "CLICKPORT_TRANSPORT": "kafka", "CLICKPORT_STORE": "chdb",
           "CLICKPORT_KAFKA_BOOTSTRAP": f"127.0.0.1:{nobody}",
           "CLICKPORT_DATA_DIR": str(tmp_path / "data"), "CLICKPORT_PORT": str(port)}
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", "sessionizer"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        def restarted_twice() -> dict[str, Any] | None:
            assert proc.poll() is None, log_path.read_text()
            try:
                body: dict[str, Any] = httpx.get(base + "/readyz", timeout=5).json()
            except httpx.HTTPError:
                return None
            return body if body.get("sessionizer_restarts", {}).get("count", 0) >= 2 else None

        body = wait_until(restarted_twice, 60, "the sessionizer loop to be restarted twice")
        assert body["ready"] is False
        assert "sessionizer_down" in body["problems"]
        assert "Kafka" in body["sessionizer_restarts"]["last_error"]
        metrics = httpx.get(base + "/metrics", timeout=5).text
        assert metric_value(metrics, "clickport_sessionizer_restarts_total") >= 2
    finally:
        proc.terminate()
        proc.wait(30)
    logged = log_path.read_text()
    assert "sessionizer loop crashed" in logged and "Traceback" in logged
