"""A damaged Store part is said out loud, not served around in silence.

Found as the issue found it: a ``clickport dev`` stopped, one ``events`` part's data file
truncated under its chDB data dir, and the process started again. chDB cannot read the part,
moves it to ``detached/broken-on-start_*`` and serves the table without its rows; nothing
was logged, ``/readyz`` stayed 200 and the API answered with the smaller counts. Now the
start logs an ERROR naming the table and the part, ``/readyz`` is 503 with ``store_damaged``
(the part and where the recovery is documented), the metric counts it, and the API still
answers over what is intact. Acknowledging the loss as docs/operations.md says (``DROP
DETACHED PART``) makes the next start ready again.
"""

from __future__ import annotations

import pathlib

import httpx
import orjson
import pytest
from helpers import click, metric_value, new_sid

from .support import FIREFOX, SITE, DevProcess, stopped_store, wait_for

EVENTS = 12
pytestmark = pytest.mark.timeout(180)


def stored_clicks(dev: DevProcess) -> int:
    """The outbound report's clicks, counted over ``events``."""
    answer = dev.get("/api/outbound-links?period=today", **{"x-api-key": dev.key()})
    assert answer.status_code == 200, answer.text
    return sum(int(row["clicks"]) for row in answer.json()["results"])


def test_a_truncated_events_part_is_logged_and_makes_readyz_503(tmp_path: pathlib.Path) -> None:
    data_dir, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    dev = DevProcess(data_dir, logs, CLICKPORT_BATCH_MAX_SECONDS="0.1",
                     CLICKPORT_RATE_LIMIT_PER_MINUTE="0")
    try:
        dev.start()
        with httpx.Client(base_url=dev.base, timeout=10) as client:
            for n in range(EVENTS):
                beacon = click(new_sid(), f"https://dest.example/{n}", "out", SITE,
                               "https://demo.localhost/damage")
                answer = client.post("/api/event", content=orjson.dumps(beacon),
                                     headers={"user-agent": FIREFOX, "content-type": "text/plain"})
                assert answer.status_code == 202
        assert wait_for(lambda: dev.readyz()["sessionizer"]["events_written"] == EVENTS)
        assert wait_for(lambda: stored_clicks(dev) == EVENTS)
        dev.stop()

        with stopped_store(data_dir) as store:
            part = store.query("SELECT name, path FROM system.parts WHERE database = "
                               "currentDatabase() AND table = 'events' AND active ORDER BY name")[0]
        data_file = max(pathlib.Path(part["path"]).glob("*.bin"), key=lambda f: f.stat().st_size)
        with open(data_file, "r+b") as damaged:
            damaged.truncate(data_file.stat().st_size // 2)
        broken = f"broken-on-start_{part['name']}"

        dev.start(ready=False)
        answer = httpx.get(dev.base + "/readyz", timeout=10)
        body = answer.json()
        assert answer.status_code == 503 and "store_damaged" in body["problems"], body
        assert body["problem_details"]["store_damaged"]["parts"] == [f"events/detached/{broken}"]
        assert "docs/operations.md" in body["problem_details"]["store_damaged"]["recover"]
        assert metric_value(dev.get("/metrics").text, "clickport_store_broken_parts") == 1
        assert stored_clicks(dev) < EVENTS  # still answering, over what is intact
        dev.stop()
        errors = [line for line in dev.logs().splitlines()
                  if " ERROR " in line and "damaged" in line]
        assert len(errors) == 1, errors  # once per part, not once per check
        assert "events" in errors[0] and broken in errors[0]

        with stopped_store(data_dir) as store:  # acknowledge the loss (docs/operations.md)
            store.execute(f"ALTER TABLE events DROP DETACHED PART '{broken}' "
                          "SETTINGS allow_drop_detached = 1")
        dev.start()  # ready again
        assert "store_damaged" not in dev.readyz()["problems"]
        assert metric_value(dev.get("/metrics").text, "clickport_store_broken_parts") == 0
        dev.stop()
    finally:
        dev.stop()  # also when an assertion failed: no process left behind
