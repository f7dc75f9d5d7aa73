"""``/readyz`` says whether accepted events can reach the Store, and names what stops them.

Found as the issue found it: with chDB's data read-only, the queue full and every beacon
answered 503, and again with the queue's disk full, ``/readyz`` answered 200 ``ready: true``.
Faults are real: chDB's data directory made read-only by a read-only bind mount under the
running app (root ignores ``chmod``; chDB then fails every insert with a file system error),
a small ``CLICKPORT_QUEUE_MAX_PENDING`` that fills while the sessionizer cannot write, and the
queue on a tmpfs filled up. Each time ``/readyz`` is 503 with the named problems, the
``clickport_ready*`` gauges agree, and once the fault is gone it is 200 with no problem and
every event answered 2xx is stored once.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from helpers import metric_value, new_sid, pageview

from .mounts import bound, fill, read_only, tmpfs
from .support import SITE, EmbeddedRun, wait_for

MAX_PENDING = 20
pytestmark = pytest.mark.timeout(120)


def problems(run: EmbeddedRun) -> dict[str, Any]:
    answer = run.client.get("/readyz")
    body: dict[str, Any] = answer.json()
    body.setdefault("problems", [])
    assert (answer.status_code == 200) is body["ready"] is (not body["problems"]), body
    return body


def naming(run: EmbeddedRun, *names: str) -> dict[str, Any] | None:
    """The ``/readyz`` body once it names every one of ``names``."""
    body = problems(run)
    return body if set(names) <= set(body["problems"]) else None


def flagged(metrics: str, problem: str) -> float:
    return metric_value(metrics.replace(f'{{problem="{problem}"}}', ""),
                        "clickport_ready_problem")


def beacon(n: int) -> dict[str, Any]:
    return pageview(new_sid(), f"https://demo.localhost/ready?n={n}", SITE)


def test_a_read_only_store_and_a_full_queue_are_named_on_readyz(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    with EmbeddedRun(data, queue_max_pending=MAX_PENDING) as run:
        run.parts.sessionizer.stuck_seconds = 2.0  # so the test need not wait a minute
        accepted = 0
        for n in range(5):
            accepted += run.post_json(beacon(n)).status_code == 202
        assert run.wait_until_stored(accepted)
        assert problems(run)["problems"] == []

        with read_only(data / "chdb"):
            answers = [run.post_json(beacon(100 + n)).status_code for n in range(2 * MAX_PENDING)]
            accepted += answers.count(202)
            assert answers.count(503) >= MAX_PENDING - 1, answers  # the queue filled up
            body = wait_for(lambda: naming(run, "store_unwritable", "queue_high_water",
                                           "sessionizer_stuck"), 30)
            assert body, problems(run)
            assert body["ready"] is False
            assert "Read-only file system" in body["problem_details"]["store_unwritable"]
            assert body["problem_details"]["queue_high_water"]["pending"] >= MAX_PENDING * 0.9
            metrics = run.client.get("/metrics").text
            assert metric_value(metrics, "clickport_ready") == 0
            assert flagged(metrics, "store_unwritable") == 1
            assert flagged(metrics, "queue_high_water") == 1
            assert flagged(metrics, "store_damaged") == 0

        # Writable again: the retried batch goes in, the queue drains, ready again.
        assert run.wait_until_stored(accepted, seconds=60)
        assert wait_for(lambda: problems(run)["problems"] == [], 30), problems(run)
        assert run.parts.sessionizer.stats.dead_lettered == {}
        assert metric_value(run.client.get("/metrics").text, "clickport_ready") == 1


def test_a_full_queue_disk_is_named_on_readyz(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    with tmpfs(data, "16m"), bound(tmp_path / "chdb", data / "chdb"), EmbeddedRun(data) as run:
        assert run.post_json(beacon(0)).status_code == 202
        assert run.wait_until_stored(1)
        assert problems(run)["problems"] == []

        filler = fill(data)
        assert run.post_json(beacon(1)).status_code == 503
        body = problems(run)
        assert "queue_unwritable" in body["problems"]
        assert "database or disk is full" in body["problem_details"]["queue_unwritable"]
        assert flagged(run.client.get("/metrics").text, "queue_unwritable") == 1

        filler.unlink()
        assert run.post_json(beacon(2)).status_code == 202
        assert run.wait_until_stored(2)
        assert wait_for(lambda: problems(run)["problems"] == [], 30), problems(run)
