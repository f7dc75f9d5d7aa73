"""Unique outbound clicks from the sessionizer's first-click marks (migration 008) against
counting distinct session ids, in chDB, over ranges that cut sessions in two: in one query,
and a UTC day at a time with finished days kept (outbound_days.py).

The sessions follow the real rules (`apply_event`, `first_click`, `EventBatch`) and are
reloaded from the Store halfway (`load_sessions`), as after an idle eviction or a restart.
Some are long enough to cross the ranges' edges and midnight, some click a domain twice in
one millisecond, some carry a client clock that runs backwards, and some began before
migration 008: their first half is written without marks or clicked domains, as an older
version wrote it. Every batch is also written twice, as a replay would. The rows are written
straight to the store (days in the past cannot come through ingest, which stamps receive
time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest
from helpers import event

from services.api import queries
from services.api.outbound import outbound_rows
from services.api.outbound_days import OutboundDays
from services.core.event import Event
from services.core.rows import EventBatch, SessionBatch, event_row, session_columns
from services.core.session import SessionState, apply_event, first_click
from services.core.store import Store
from services.sessionizer.state import load_sessions

from .dataset import Loaded

SITE = "uniques.test"
NOW = dt.datetime.now(dt.UTC)
TODAY = dt.datetime.combine(NOW.date(), dt.time(0), dt.UTC)
DOMAINS = [f"shop{n}.example" for n in range(9)]
PRE_008_COLUMNS = ("first_click_at", "is_first_click", "clicked_domains", "clicked_first_at")

REFERENCE = """
SELECT click_domain AS domain, count() AS clicks, uniqExact(session_id) AS unique_clicks
FROM events FINAL
WHERE site_id = {site:String}
  AND timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}
  AND name = 'click'
GROUP BY domain
ORDER BY unique_clicks DESC, clicks DESC, domain ASC
"""


def session_events(n: int, rng: random.Random) -> list[Event]:
    sid = f"uniq{n:018d}"
    ts = int((TODAY - dt.timedelta(days=6)).timestamp() * 1000) + rng.randint(0, 6 * 86_400_000)
    events = [event("pageview", sid=sid, site=SITE, ts=ts)]
    for _ in range(rng.randint(1, 8)):
        # mostly seconds apart, sometimes hours (so crossing edges), sometimes the same
        # millisecond, sometimes backwards (a client clock behind another replica's)
        ts += rng.choice([0, -1_500, 4_000, 30_000, 600_000, 3 * 3_600_000])
        if rng.random() < 0.75:
            domain = rng.choice(DOMAINS[:3] if rng.random() < 0.6 else DOMAINS)
            events.append(event("click", sid=sid, site=SITE, ts=ts, click_domain=domain,
                                click_url=f"https://{domain}/p{rng.randint(1, 3)}"))
        else:
            events.append(event("pageview", sid=sid, site=SITE, ts=ts))
    return events


def write_twice(store: Store, rows: Any) -> None:
    store.insert("events", rows)
    store.insert("events", rows)  # a replayed batch: FINAL keeps one copy of each event


def apply_all(state: SessionState | None, events: list[Event], batch: EventBatch,
              offset: int) -> SessionState | None:
    for item in events:
        after, goals = apply_event(state, item, offset)
        batch.add(item, goals, first_click(state, after, item))
        state, offset = after, offset + 1
    return state


@pytest.fixture(scope="module")
def store(loaded: Loaded) -> Store:
    store = loaded.parts.store
    rng = random.Random(80)
    sessions = [session_events(n, rng) for n in range(400)]
    legacy_rows: list[dict[str, Any]] = []
    legacy_states = []
    first_half = EventBatch()
    states = []
    for n, events in enumerate(sessions):
        half = len(events) // 2
        if n % 5 == 0:  # began before migration 008
            state = None
            for item in events[:half]:
                state, goals = apply_event(state, item, 1)
                row = event_row(item, goals)
                legacy_rows.append({k: v for k, v in row.items() if k not in PRE_008_COLUMNS})
            assert state is not None
            legacy_states.append(state)
        else:
            state = apply_all(None, events[:half], first_half, 1)
            assert state is not None
            states.append(state)
    write_twice(store, legacy_rows)
    write_twice(store, first_half)
    legacy = session_columns(legacy_states)
    store.insert("sessions", [{k: v[i] for k, v in legacy.items() if k not in PRE_008_COLUMNS}
                              for i in range(len(legacy_states))])
    current = SessionBatch()
    for state in states:
        current.put((state.site, state.sid), state)
    store.insert("sessions", current)

    reloaded = load_sessions(store, [(SITE, events[0].sid) for events in sessions])
    assert len(reloaded) == len(sessions)
    assert any(s.has_clicked and not s.clicked_domains for s in reloaded.values())  # pre-008
    assert any(len(s.clicked_domains) > 1 for s in reloaded.values())
    second_half = EventBatch()
    for events in sessions:
        apply_all(reloaded[(SITE, events[0].sid)], events[len(events) // 2:], second_half, 100)
    write_twice(store, second_half)
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


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_unique_clicks_are_distinct_sessions(store: Store, start: dt.datetime,
                                             end: dt.datetime) -> None:
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    params = {"site": SITE, "start": start.strftime(fmt)[:-3], "end": end.strftime(fmt)[:-3]}

    async def run(sql: str, bound: Any) -> list[dict[str, Any]]:
        return store.query(sql, bound)

    expected = [(r["domain"], int(r["clicks"]), int(r["unique_clicks"]))
                for r in store.query(REFERENCE, params)]
    rows = asyncio.run(outbound_rows(run, params))
    assert [(r["domain"], int(r["clicks"]), int(r["unique_clicks"])) for r in rows] == expected

    # the same counts a UTC day at a time: read, then from the kept days, and with a cap
    # that no day meets (the single query answers)
    single = [{**r, "latest_ms": int(r["latest_ms"])}
              for r in store.query(queries.OUTBOUND_DOMAINS, params)]
    days = OutboundDays(run)
    assert asyncio.run(days.top_domains(SITE, start, end, NOW)) == single
    assert asyncio.run(days.top_domains(SITE, start, end, NOW)) == single
    assert asyncio.run(OutboundDays(run, crossing_cap=0).top_domains(
        SITE, start, end, NOW)) == single


def test_a_kept_day_is_read_again_once_written(store: Store) -> None:
    calls: list[str] = []

    async def run(sql: str, bound: Any) -> list[dict[str, Any]]:
        calls.append(sql)
        return store.query(sql, bound)

    start, end = TODAY - dt.timedelta(days=4), TODAY - dt.timedelta(days=1)
    days = OutboundDays(run)
    before = asyncio.run(days.top_domains(SITE, start, end, NOW))
    calls.clear()
    assert asyncio.run(days.top_domains(SITE, start, end, NOW)) == before
    assert calls == [queries.DAY_PARTS]

    # a late click to a new domain on a kept day, from a session that began days before
    ts = int((TODAY - dt.timedelta(days=3, hours=-5)).timestamp() * 1000)
    late = event("click", sid="uniqlate", site=SITE, ts=ts, click_domain="late.example",
                 click_url="https://late.example/")
    batch = EventBatch()
    batch.add(late, [], (ts - 2 * 86_400_000, 0))  # its first click: before the period
    store.insert("events", batch)
    after = asyncio.run(days.top_domains(SITE, start, end, NOW))
    assert [r for r in after if r["domain"] == "late.example"] == [
        {"domain": "late.example", "clicks": 1, "unique_clicks": 1, "latest_ms": ts}]
    assert queries.OUTBOUND_DAY_COUNTS in calls


def test_the_ranges_cut_sessions_and_include_pre_008_clicks(store: Store) -> None:
    """The cases above are not vacuous: some clicks in a cut range have their first click
    outside it, and some have no known first click."""
    start, end = RANGES[2]
    fmt = "%Y-%m-%d %H:%M:%S"
    counts = store.query(
        "SELECT countIf(is_first_click = 0 AND first_click_at > toDateTime64(0, 3, 'UTC') "
        "AND first_click_at < {start:DateTime64(3, 'UTC')}) AS first_before, "
        "countIf(first_click_at = toDateTime64(0, 3, 'UTC')) AS unknown, "
        "countIf(is_first_click = 1) AS firsts "
        "FROM events FINAL WHERE site_id = {site:String} AND name = 'click' "
        "AND timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}",
        {"site": SITE, "start": start.strftime(fmt), "end": end.strftime(fmt)})[0]
    assert all(int(value) > 0 for value in counts.values()), counts
    assert queries.UNIQUE_DOMAIN_CLICKS in queries.OUTBOUND_DOMAINS
