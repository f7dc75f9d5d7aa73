"""A corrupt queue file stops the queue, not the API, and ``clickport queue repair`` saves
what can be read.

Found as the issue found it: part of ``queue.sqlite3`` overwritten with garbage while
``clickport dev`` was stopped. With its first page gone, the next start failed with SQLite's
error and nothing served, the dashboard over intact chDB data included; with a page of
waiting messages gone, the start did not notice, ingest went on answering 2xx into the
damaged file, and the sessionizer stopped at the page. Here a ``clickport dev`` stores some
clicks and stops; more events wait unconsumed in its queue (written by the real
`DiskQueueTransport`, as ingest writes them) with a dead letter; one B-tree page of the
waiting messages is overwritten with random bytes. Then:

- ``clickport dev`` starts: the API answers over chDB, ingest answers 503 with the reason
  ``queue_unusable``, ``/readyz`` is 503 naming it and the way out, and ``queue repair``
  refuses while dev holds the data dir;
- ``clickport queue check`` says it is damaged and how many waiting messages can be read:
  all but the destroyed page's;
- ``clickport queue repair`` moves the file aside and salvages them (and the dead letter)
  into a fresh file; the next start is ready, stores the salvaged events once each and the
  new events after them.

Then the same with the file's first page overwritten: nothing can be read, the repair says
so, and the fresh file works.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
import re
import sqlite3
import subprocess
import sys
import time
import uuid

import httpx
import orjson
import pytest
from helpers import click, new_sid

from services.adapters.disk_queue import DiskQueueTransport
from services.core.event import Event, encode_event
from services.core.transport import Message, SetAside

from .support import FIREFOX, ROOT, SITE, DevProcess, stopped_store, wait_for

STORED, PENDING, NEW = 10, 80, 5
pytestmark = pytest.mark.timeout(180)


def post_clicks(dev: DevProcess, tag: str, count: int) -> list[int]:
    with httpx.Client(base_url=dev.base, timeout=10) as client:
        return [client.post("/api/event", content=orjson.dumps(click(
            new_sid(), f"https://dest.example/{tag}/{n}", "out", SITE,
            "https://demo.localhost/q")), headers={"user-agent": FIREFOX,
                                                    "content-type": "text/plain"}).status_code
                for n in range(count)]


def stored_clicks(dev: DevProcess) -> int:
    answer = dev.get("/api/outbound-links?period=today", **{"x-api-key": dev.key()})
    assert answer.status_code == 200, answer.text
    return sum(int(row["clicks"]) for row in answer.json()["results"])


def waiting_event(n: int) -> Event:
    return Event(id=uuid.uuid4().hex, site=SITE, sid=new_sid(), ts=int(time.time() * 1000),
                 kind="click", url="https://demo.localhost/q", path="/q",
                 click_url=f"https://dest.example/waiting/{n}", click_domain="dest.example",
                 click_text="a link text long enough to spread the rows over pages " * 4,
                 click_kind="primary")


async def write_waiting(queue: pathlib.Path) -> None:
    """Events accepted but not consumed yet, and one dead letter, as ingest and the
    sessionizer would have left them."""
    transport = DiskQueueTransport(queue, 1_000_000)
    await transport.start()
    for n in range(PENDING):
        event = waiting_event(n)
        await transport.publish(event.sid.encode(), encode_event(event))
    letter = waiting_event(PENDING)
    await transport.dead_letters().put(
        [SetAside([Message(0, 1, letter.sid.encode(), encode_event(letter))], "corrupt",
                  "kept for the repair to salvage")], group="embedded", offsets={})
    await transport.stop()


def destroy_a_waiting_page(queue: pathlib.Path) -> int:
    """Overwrite one leaf page of ``messages`` that holds waiting messages only (neither the
    first leaf nor the last); returns how many rows it held."""
    with sqlite3.connect(queue) as db:
        leaves = db.execute("SELECT ncell, pgoffset, pgsize FROM dbstat WHERE name = "
                            "'messages' AND pagetype = 'leaf' ORDER BY path").fetchall()
    assert len(leaves) >= 4, leaves
    cells, offset, size = leaves[-2]
    with open(queue, "r+b") as file:
        file.seek(offset)
        file.write(random.Random(7).randbytes(size))
    return int(cells)


def clickport(data_dir: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "CLICKPORT_DATA_DIR": str(data_dir)})


def test_a_corrupt_queue_leaves_the_api_up_and_repair_salvages_what_is_readable(
        tmp_path: pathlib.Path) -> None:
    data_dir, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    queue = data_dir / "queue.sqlite3"
    dev = DevProcess(data_dir, logs, CLICKPORT_BATCH_MAX_SECONDS="0.1",
                     CLICKPORT_RATE_LIMIT_PER_MINUTE="0")
    try:
        dev.start()
        assert post_clicks(dev, "stored", STORED) == [202] * STORED
        assert wait_for(lambda: stored_clicks(dev) == STORED)
        dev.stop()
        asyncio.run(write_waiting(queue))
        lost = destroy_a_waiting_page(queue)
        assert 0 < lost < PENDING

        assert_unusable_with_the_api_up(dev, STORED)
        check = clickport(data_dir, "queue", "check")
        assert check.returncode == 1, check
        assert "damaged" in check.stdout and "integrity_check:" in check.stdout
        readable = f"{PENDING - lost} of {PENDING} unconsumed messages, 1 dead letters"
        assert readable in check.stdout, check.stdout

        repair = clickport(data_dir, "queue", "repair")
        assert repair.returncode == 0, repair
        assert readable in repair.stdout and f"{lost} unconsumed messages could not be read" in (
            repair.stdout)
        assert [p.name for p in data_dir.glob("queue.sqlite3.corrupt-*")], repair.stdout
        recheck = clickport(data_dir, "queue", "check")
        assert recheck.returncode == 0 and ": ok" in recheck.stdout, recheck

        dev.start()
        assert post_clicks(dev, "new", NEW) == [202] * NEW
        expected = STORED + PENDING - lost + NEW
        assert wait_for(lambda: stored_clicks(dev) == expected, 30), stored_clicks(dev)
        assert dev.readyz()["problems"] == []
        letters = clickport(data_dir, "dlq", "list")
        assert letters.returncode == 0 and "1 dead letters pending" in letters.stdout, letters
        dev.stop()
        with stopped_store(data_dir) as store:
            rows = store.query("SELECT count() AS n, uniqExact(event_id) AS ids, "
                               "countIf(click_url LIKE '%/waiting/%') AS waiting FROM events")[0]
        assert (int(rows["n"]), int(rows["ids"]), int(rows["waiting"])) == (
            expected, expected, PENDING - lost)

        # The first page: the header and the schema, what stopped the start as found.
        with open(queue, "r+b") as file:
            file.write(random.Random(8).randbytes(4096))
        assert_unusable_with_the_api_up(dev, expected)
        check = clickport(data_dir, "queue", "check")
        assert check.returncode == 1 and "file is not a database" in check.stdout, check
        repair = clickport(data_dir, "queue", "repair")
        assert repair.returncode == 0 and "0 unconsumed messages" in repair.stdout, repair
        dev.start()
        assert post_clicks(dev, "after", 1) == [202]
        assert wait_for(lambda: stored_clicks(dev) == expected + 1, 30), stored_clicks(dev)
        dev.stop()
    finally:
        dev.stop()  # also when an assertion failed: no process left behind


def assert_unusable_with_the_api_up(dev: DevProcess, stored: int) -> None:
    """Start ``dev`` on its damaged queue: up, not ready, the API answering; then stop it."""
    logged = unusable_lines(dev)
    dev.start(ready=False)
    assert stored_clicks(dev) == stored  # the API answers over the intact chDB data
    with httpx.Client(base_url=dev.base, timeout=10) as client:
        answer = client.post("/api/event", content=orjson.dumps(click(
            new_sid(), "https://dest.example/refused", "out", SITE, "https://demo.localhost/q")),
            headers={"user-agent": FIREFOX, "content-type": "text/plain"})
    assert answer.status_code == 503 and answer.json()["reason"] == "queue_unusable"
    readyz = httpx.get(dev.base + "/readyz", timeout=10)
    body = readyz.json()
    assert readyz.status_code == 503 and "queue_unusable" in body["problems"], body
    assert "clickport queue repair" in body["problem_details"]["queue_unusable"]["recover"]
    busy = clickport(dev.data_dir, "queue", "repair")
    assert busy.returncode == 1 and "in use by a running clickport dev" in busy.stderr
    dev.stop()
    assert unusable_lines(dev) == logged + 1, dev.logs()[-3000:]


def unusable_lines(dev: DevProcess) -> int:
    return len(re.findall(r"ERROR clickport.embedded the embedded queue .* is unusable",
                          dev.logs()))
