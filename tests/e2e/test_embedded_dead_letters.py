"""Dead letters in the embedded product (docs/delivery.md, "Dead letters"): the disk queue and
chDB in one served process, as ``clickport dev`` runs them, beacons through ``POST
/api/event``, and the real ``clickport dlq`` commands as processes, which go through the
running app's admin route because it holds the data directory.

Refusals of both kinds of write: a CHECK constraint on ``events`` refuses a batch's event
rows (nothing of it is written), and one on ``sessions`` (no session may have clicked
wicked.example) refuses the session rows of two batches after their event rows were written,
the second one's click marked as its session's first click of the domain, because the session
reloaded without the first. All are set aside, as is a corrupt message; the queue goes on;
``/readyz`` is degraded. After the fix, three replays (``--upto`` the first batch, ``--upto``
the first click, then the rest: the second click alone, as it was refused, so only the
offsets tell the two inserts apart) store every event once, each event row with the
first-click marks of the state it was finally applied to (the second click's written row is
replaced), and every session equal to the fold of `apply_event` in the order the sessionizer
applied the events (the set-aside ones at their new offsets).
"""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import subprocess
import sys
from typing import Any

import httpx
import orjson
from helpers import click, engagement, new_sid, pageview, wait_until
from stored_events import EVENT_COLUMNS, event_of_row
from threads import free_port, serve

from services.core.rows import SESSION_COLUMNS_FOR_RELOAD, session_from_row
from services.core.session import FirstClick, SessionState, apply_event, first_click
from services.core.settings import Settings
from services.embedded.app import DEMO_DOMAIN, build_embedded_app
from services.embedded.runtime import claim, publish_runtime

UA = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
      "content-type": "text/plain"}
SITE = DEMO_DOMAIN
CONSTRAINTS = {"no_evil": ("events", "url NOT LIKE '%evil%'"),
               "no_wicked": ("sessions", "NOT has(clicked_domains, 'wicked.example')")}
CORRUPT = b"\xc1 is never a MessagePack byte"


class Poster:
    """Posts beacons, each page URL carrying its number, and knows each one's queue offset
    (a fresh queue numbers its messages 1, 2, ...)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.offsets: dict[int, int] = {}  # beacon number -> queue offset
        self.messages = 0

    def page(self, path: str) -> str:
        return f"https://{SITE}{path}?seq={len(self.offsets)}"

    def post(self, beacon: dict[str, Any]) -> None:
        response = httpx.post(self.base + "/api/event", content=orjson.dumps(beacon),
                              headers=UA, timeout=30)
        assert response.status_code == 202 and response.json() == {"ok": True}, response.text
        self.messages += 1
        self.offsets[len(self.offsets)] = self.messages

    def corrupt(self, queue_file: pathlib.Path) -> None:
        """A message ingest did not write (corruption), straight into the queue's file."""
        with sqlite3.connect(queue_file, timeout=30) as db:
            db.execute("INSERT INTO messages (key, value) VALUES (?, ?)", (b"x", CORRUPT))
        self.messages += 1


def clickport(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def test_refused_batches_are_set_aside_and_replayed_exactly_once_through_dev(
        data_dir: pathlib.Path) -> None:
    port = free_port()
    lock = claim(data_dir)  # what clickport dev holds: the CLI then goes through the app
    runtime = publish_runtime(data_dir, "127.0.0.1", port)
    settings = Settings.from_env({}, data_dir=data_dir, batch_max_seconds=0.1,
                                 rate_limit_per_minute=0)
    app = build_embedded_app(settings, runtime)
    env = {**os.environ, "CLICKPORT_DATA_DIR": str(data_dir), "CLICKPORT_TRANSPORT": "memory",
           "CLICKPORT_STORE": "chdb"}
    try:
        with serve(app, port=port) as base:
            parts = app.state.embedded
            store = parts.store
            for name, (table, check) in CONSTRAINTS.items():
                store.query(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK {check}")
            p = Poster(base)
            a, b, c, d, e = (new_sid() for _ in range(5))

            def events_stored() -> int:
                return int(store.query("SELECT count() AS n FROM events FINAL")[0]["n"])

            def listed() -> dict[str, Any]:
                found: dict[str, Any] = json.loads(clickport(env, "dlq", "list", "--json"))
                return found

            def set_aside(constraint: str, count: int = 1) -> dict[str, Any] | None:
                """The list once every beacon is stored or set aside by no_evil (whose
                batches wrote nothing) and ``constraint`` refused ``count`` beacons."""
                found = listed()
                by = [x for x in found["entries"] if constraint in x["detail"]]
                unwritten = sum("no_evil" in x["detail"] for x in found["entries"])
                whole = events_stored() + unwritten == len(p.offsets)
                return found if len(by) >= count and whole else None

            def d_clicks() -> list[tuple[int, int]]:
                rows = store.query("SELECT toUnixTimestamp64Milli(first_click_at) AS at, "
                                   "is_first_click AS first FROM events FINAL WHERE "
                                   "session_id = {s:String} AND name = 'click' ORDER BY "
                                   "timestamp", {"s": d})
                return [(int(r["at"]), int(r["first"])) for r in rows]

            for sid in (a, b, c, d):
                p.post(pageview(sid, p.page("/"), SITE))
            wait_until(lambda: events_stored() == 4, 30, "the first pageviews")

            p.post(engagement(a, 40, 3_000, SITE, p.page("/")))  # refused with its batch
            p.post(pageview(b, p.page("/evil"), SITE))
            p.post(pageview(c, p.page("/two"), SITE))
            first = wait_until(lambda: set_aside("no_evil"), 60, "the events refusal")
            p.post(click(d, "https://wicked.example/1", "Go", SITE, p.page("/")))
            wait_until(lambda: set_aside("no_wicked"), 60, "the sessions refusal")

            # The queue goes on: the same sessions, reloaded without the refused batches,
            # and a new one. d, reloaded without its click, clicks wicked.example again: a
            # first click, as far as its reloaded state knows, and refused again, alone.
            p.corrupt(data_dir / "queue.sqlite3")
            p.post(click(d, "https://www.wicked.example/2", "Go", SITE, p.page("/")))
            wait_until(lambda: set_aside("no_wicked", 2), 60, "the second sessions refusal")
            p.post(click(a, "https://amazon.com/dp/B4", "Buy", SITE, p.page("/")))
            p.post(pageview(b, p.page("/three"), SITE))
            p.post(engagement(c, 80, 20_000, SITE, p.page("/two")))
            p.post(pageview(e, p.page("/"), SITE))
            before = wait_until(
                lambda: (found := set_aside("no_wicked", 2)) and any(
                    x["reason"] == "corrupt" for x in found["entries"]) and found, 60,
                "the later beacons and the corrupt message")
            entries = before["entries"]
            [(t1, first1), (t2, first2)] = d_clicks()  # both rows written, both "first"
            assert first1 == first2 == 1 and t1 < t2
            assert before["pending"] == len(entries) and entries[0]["id"] == first["entries"][0][
                "id"]
            assert [x["event"] for x in entries if x["reason"] == "corrupt"] == [None]
            assert all(x["partition"] == 0 for x in entries)

            ready = wait_until(lambda: (r := httpx.get(base + "/readyz", timeout=10).json())[
                "dead_letters"]["pending"] == len(entries) and r, 30, "readyz to count them")
            assert ready["ready"] is True and ready["status"] == "degraded"
            assert ready["store"] == "ok" and "clickport dlq" in ready["dead_letters"]["run"]
            assert ready["sessionizer"]["dead_lettered"] == {
                "store_rejected": len(entries) - 1, "corrupt": 1}
            assert httpx.post(base + "/admin/dlq", json={"action": "list"},
                              timeout=10).status_code == 403  # only with the run's token

            for name, (table, _) in CONSTRAINTS.items():
                store.query(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            upto = first["entries"][-1]["id"]
            assert clickport(env, "dlq", "replay", "--upto", str(upto)).startswith(
                f"replayed {len(first['entries'])} dead letters")
            wait_until(lambda: events_stored() == len(p.offsets), 60, "the replayed events")
            [click1, *_] = [x for x in entries if "no_wicked" in x["detail"]]
            assert clickport(env, "dlq", "replay", "--upto", str(click1["id"])).startswith(
                "replayed 1 dead letters")

            def d_events() -> int:
                rows = store.query("SELECT events FROM sessions FINAL WHERE session_id = "
                                   "{s:String}", {"s": d})
                return int(rows[0]["events"]) if rows else 0

            wait_until(lambda: d_events() == 2, 30, "the first click's replay to be applied")
            rest = len(entries) - len(first["entries"]) - 1
            assert clickport(env, "dlq", "replay").startswith(f"replayed {rest} dead letters")
            again = wait_until(lambda: (found := listed())["pending"] == 1 and found, 30,
                               "the corrupt message to come back")
            [corrupt] = again["entries"]
            # replayed in id order after every message there was: its new offset says so
            corrupt_rank = [x["reason"] for x in entries].index("corrupt")
            assert corrupt["reason"] == "corrupt"
            assert corrupt["offset"] == p.messages + 1 + corrupt_rank
            assert clickport(env, "dlq", "drop", "--yes").startswith("dropped 1 dead letters")
            assert clickport(env, "dlq", "list").startswith("0 dead letters pending")

            new_offset = {x["offset"]: p.messages + 1 + rank for rank, x in enumerate(entries)}
            expected, marks = fold(store, p.offsets, new_offset, parts.transport.stream)
            assert set(expected) == {a, b, c, d, e}

            def sessions() -> dict[str, SessionState]:
                rows = store.query(f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL "
                                   "WHERE site_id = {s:String}", {"s": SITE})
                return {r["session_id"]: session_from_row(r) for r in rows}

            wait_until(lambda: sessions() == expected, 30, "sessions to equal the fold")
            rows = store.query("SELECT toString(event_id) AS id, toUnixTimestamp64Milli("
                               "first_click_at) AS at, is_first_click FROM events FINAL")
            assert {r["id"]: (int(r["at"]), int(r["is_first_click"])) for r in rows} == marks
            assert d_clicks() == [(t1, 1), (t1, 0)]  # the replay's row replaced the second
            counts = store.query("SELECT count() AS n, uniqExact(event_id) AS ids "
                                 "FROM events FINAL")[0]
            assert int(counts["n"]) == int(counts["ids"]) == len(p.offsets)  # exactly once
            assert wait_until(lambda: httpx.get(base + "/readyz", timeout=10).json()[
                "status"] == "ok", 30, "readyz to be ok again")
    finally:
        lock.close()


def fold(store: Any, offsets: dict[int, int], new_offset: dict[int, int], stream: int
         ) -> tuple[dict[str, SessionState], dict[str, FirstClick]]:
    """The sessions, and each event row's first-click marks, of `apply_event` over the stored
    events in the order the sessionizer applied them: at their queue offsets, a set-aside one
    at the offset its replay gave it."""
    rows = store.query(f"SELECT {EVENT_COLUMNS} FROM events FINAL WHERE site_id = {{s:String}}",
                       {"s": SITE})
    applied = []
    for row in rows:
        offset = offsets[int(row["url"].rsplit("seq=", 1)[1])]
        applied.append((new_offset.get(offset, offset), event_of_row(row)))
    states: dict[str, SessionState] = {}
    marks: dict[str, FirstClick] = {}
    for offset, event in sorted(applied, key=lambda pair: pair[0]):
        before = states.get(event.sid)
        states[event.sid], _ = apply_event(before, event, offset, stream=stream)
        marks[event.id] = first_click(before, states[event.sid], event)
    return states, marks
