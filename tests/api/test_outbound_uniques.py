"""Unique outbound clicks from the sessionizer's first-click marks (migration 008) against
counting distinct session ids, in chDB, over ranges that cut sessions in two: in one query,
and a UTC day at a time with finished days kept (outbound_days.py).

The sessions follow the real rules (`apply_event`, `first_click`, `EventBatch`) and are
written in segments, reloaded from the Store between them (`load_sessions`), as after an
idle eviction or a restart. Some run long enough to cross the ranges' edges and midnight,
some click a domain twice in one millisecond, some carry a client clock that runs
backwards, and two bots click more domains than a session tracks. On a second site every
session has a segment an older release wrote (no marks, no clicked domains): either its
first (it began before migration 008) or its middle (a rollback and a roll forward again).
Every batch is written twice, as a replay would. The rows go straight to the store (days in
the past cannot come through ingest, which stamps receive time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest
import uncached
from helpers import event

from services.api import queries
from services.api.outbound import outbound_rows
from services.api.outbound_days import OutboundDays
from services.core.event import Event
from services.core.rows import EventBatch, SessionBatch, event_row, session_columns
from services.core.session import MAX_CLICKED_DOMAINS, SessionState, apply_event, first_click
from services.core.store import Store
from services.sessionizer.state import load_sessions

from .dataset import Loaded

SITE = "uniques.test"  # written by this release only
OLDER = "older.test"  # every session has a segment an older release wrote
NOW = dt.datetime.now(dt.UTC)
TODAY = dt.datetime.combine(NOW.date(), dt.time(0), dt.UTC)
DOMAINS = [f"shop{n}.example" for n in range(9)]
MARK_COLUMNS = ("first_click_at", "is_first_click", "clicked_domains", "clicked_first_at")


def click(site: str, sid: str, ts: int, domain: str, page: int = 1) -> Event:
    return event("click", sid=sid, site=site, ts=ts, click_domain=domain,
                 click_url=f"https://{domain}/p{page}")


def session_events(site: str, n: int, rng: random.Random) -> list[Event]:
    sid = f"uniq{n:018d}"
    ts = int((TODAY - dt.timedelta(days=6)).timestamp() * 1000) + rng.randint(0, 6 * 86_400_000)
    events = [event("pageview", sid=sid, site=site, ts=ts)]
    for _ in range(rng.randint(1, 8)):
        # mostly seconds apart, sometimes hours (so crossing edges), sometimes the same
        # millisecond, sometimes backwards (a client clock behind another replica's)
        ts += rng.choice([0, -1_500, 4_000, 30_000, 600_000, 3 * 3_600_000])
        if rng.random() < 0.75:
            domain = rng.choice(DOMAINS[:3] if rng.random() < 0.6 else DOMAINS)
            events.append(click(site, sid, ts, domain, rng.randint(1, 3)))
        else:
            events.append(event("pageview", sid=sid, site=site, ts=ts))
    return events


def bot_events(n: int) -> list[Event]:
    """A session clicking more domains than a session tracks, over about a day and a half."""
    sid = f"bot{n:019d}"
    ts = int((TODAY - dt.timedelta(days=3, hours=n)).timestamp() * 1000)
    count = MAX_CLICKED_DOMAINS + 5
    return [click(SITE, sid, ts + i * 600_000, f"bot{(i + n) % count}.example")
            for i in range(count)]


def segment(events: list[Event], parts: int, index: int) -> list[Event]:
    size = -(-len(events) // parts)
    return events[index * size:(index + 1) * size]


def write(store: Store, sessions: list[tuple[list[Event], tuple[str, ...]]]) -> None:
    """Write each session's segments in turn, by the release its plan names for each:
    ``new`` (marks and clicked domains) or ``old`` (neither: the columns' defaults)."""
    states: dict[tuple[str, str], SessionState] = {}
    for turn in range(max(len(plan) for _, plan in sessions)):
        marked, unmarked, marked_states = EventBatch(), [], SessionBatch()
        unmarked_states = []
        for events, plan in sessions:
            if turn >= len(plan):
                continue
            state = states.get((events[0].site, events[0].sid))
            for offset, item in enumerate(segment(events, len(plan), turn), start=turn * 100):
                after, goals = apply_event(state, item, offset)
                if plan[turn] == "new":
                    marked.add(item, goals, first_click(state, after, item))
                else:
                    unmarked.append(without_marks(event_row(item, goals)))
                state = after
            assert state is not None
            if plan[turn] == "new":
                marked_states.put((state.site, state.sid), state)
            else:
                unmarked_states.append(state)
        for rows in (marked, unmarked):
            if len(rows):
                store.insert("events", rows)
                store.insert("events", rows)  # a replayed batch: FINAL keeps one copy
        if len(marked_states):
            store.insert("sessions", marked_states)
        if unmarked_states:
            columns = session_columns(unmarked_states)
            store.insert("sessions", [without_marks({k: v[i] for k, v in columns.items()})
                                      for i in range(len(unmarked_states))])
        # reloaded from the store, as a restarted or rebalanced sessionizer does
        states = load_sessions(store, [(e[0].site, e[0].sid) for e, plan in sessions
                                       if len(plan) > turn + 1])


def without_marks(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in MARK_COLUMNS}


@pytest.fixture(scope="module")
def store(loaded: Loaded) -> Store:
    store = loaded.parts.store
    rng = random.Random(80)
    write(store, [*((session_events(SITE, n, rng), ("new", "new")) for n in range(400)),
                  *((bot_events(n), ("new", "new")) for n in range(2)),
                  *((session_events(OLDER, n, rng), ("old", "new") if n % 2 else
                     ("new", "old", "new")) for n in range(150))])
    reloaded = load_sessions(store, [(OLDER, f"uniq{n:018d}") for n in range(150)])
    assert any(s.has_clicked and not s.clicked_domains for s in reloaded.values())
    return store


RANGES = [
    (TODAY - dt.timedelta(days=10), TODAY + dt.timedelta(days=1)),  # every session whole
    (TODAY - dt.timedelta(days=4), TODAY - dt.timedelta(days=2)),  # whole days
    (TODAY - dt.timedelta(days=5, hours=5, minutes=30), TODAY - dt.timedelta(hours=7)),
    (TODAY - dt.timedelta(days=3) + dt.timedelta(hours=8),  # a -08:00 site's day
     TODAY - dt.timedelta(days=2) + dt.timedelta(hours=8)),
    (TODAY - dt.timedelta(days=2, hours=-3), TODAY - dt.timedelta(days=2, hours=-4)),  # an hour
    (TODAY - dt.timedelta(days=40), TODAY - dt.timedelta(days=30)),  # no data
    (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), TODAY + dt.timedelta(days=1)),  # "all"
]


def bounds(site: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    return {"site": site, "start": start.strftime(fmt)[:-3], "end": end.strftime(fmt)[:-3]}


class Recorded:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[str] = []

    async def run(self, sql: str, params: Any) -> list[dict[str, Any]]:
        self.calls.append(sql)
        return self.store.query(sql, params)


@pytest.mark.parametrize("site", [SITE, OLDER])
@pytest.mark.parametrize(("start", "end"), RANGES)
def test_unique_clicks_are_distinct_sessions(store: Store, site: str, start: dt.datetime,
                                             end: dt.datetime) -> None:
    params = bounds(site, start, end)
    expected = [(r["domain"], int(r["clicks"]), int(r["unique_clicks"]))
                for r in store.query(uncached.OUTBOUND_DOMAINS, params)]
    run = Recorded(store).run
    rows = asyncio.run(outbound_rows(run, params))
    assert [(r["domain"], int(r["clicks"]), int(r["unique_clicks"])) for r in rows] == expected

    # the same counts a UTC day at a time: read, then from the kept days, and with a cap
    # that no day meets (the single query answers)
    hashed = [{**r, "latest_ms": int(r["latest_ms"])}
              for r in store.query(queries.OUTBOUND_DOMAINS_HASHED, params)]
    days = OutboundDays(run)
    assert asyncio.run(days.top_domains(site, start, end, NOW)) == hashed
    assert asyncio.run(days.top_domains(site, start, end, NOW)) == hashed
    assert asyncio.run(OutboundDays(run, crossing_cap=0).top_domains(
        site, start, end, NOW)) == hashed


def test_marks_count_every_period_they_can(store: Store) -> None:
    """Sessions hashed one by one only where rows without marks lie in the period."""
    for site, expect_hashing in ((SITE, False), (OLDER, True)):
        recorded = Recorded(store)
        for start, end in RANGES:
            asyncio.run(outbound_rows(recorded.run, bounds(site, start, end)))
            asyncio.run(OutboundDays(recorded.run).top_domains(site, start, end, NOW))
        assert (queries.OUTBOUND_DOMAINS_HASHED in recorded.calls) is expect_hashing


@pytest.mark.parametrize(("site", "wanted"), [(SITE, ("first_before", "untracked", "firsts")),
                                               (OLDER, ("unmarked", "untracked", "firsts"))])
def test_the_cases_are_there(store: Store, site: str, wanted: tuple[str, ...]) -> None:
    """Not vacuous: in a range that cuts sessions, some clicks have their first click before
    it, some are untracked, some unmarked (on the second site)."""
    counts = store.query(
        "SELECT countIf(is_first_click = 0 AND toUnixTimestamp64Milli(first_click_at) > 1 "
        "AND first_click_at < {start:DateTime64(3, 'UTC')}) AS first_before, "
        "countIf(toUnixTimestamp64Milli(first_click_at) = 1) AS untracked, "
        "countIf(toUnixTimestamp64Milli(first_click_at) = 0) AS unmarked, "
        "countIf(is_first_click = 1) AS firsts "
        "FROM events FINAL WHERE site_id = {site:String} AND name = 'click' "
        "AND timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}",
        bounds(site, *RANGES[2]))[0]
    assert all(int(counts[name]) > 0 for name in wanted), counts


def test_a_kept_day_is_read_again_once_written(store: Store) -> None:
    recorded = Recorded(store)
    start, end = TODAY - dt.timedelta(days=4), TODAY - dt.timedelta(days=1)
    days = OutboundDays(recorded.run)
    before = asyncio.run(days.top_domains(SITE, start, end, NOW))
    recorded.calls.clear()
    assert asyncio.run(days.top_domains(SITE, start, end, NOW)) == before
    assert recorded.calls == [queries.DAY_PARTS]

    # a late click on a kept day, from a new session whose first click on that domain was
    # before the period: one more click and one more unique click
    ts = int((TODAY - dt.timedelta(days=3, hours=-5)).timestamp() * 1000)
    batch = EventBatch()
    batch.add(click(SITE, "uniqlate", ts, DOMAINS[0]), [], (ts - 2 * 86_400_000, 0))
    store.insert("events", batch)
    after = asyncio.run(days.top_domains(SITE, start, end, NOW))
    old, new = (next(r for r in rows if r["domain"] == DOMAINS[0]) for rows in (before, after))
    assert (new["clicks"], new["unique_clicks"]) == (old["clicks"] + 1, old["unique_clicks"] + 1)
    assert new["latest_ms"] == max(old["latest_ms"], ts)
    assert queries.OUTBOUND_DAY_COUNTS in recorded.calls
