"""KPI sums kept per finished UTC day (services/api/day_sums.py) against one plain query over
the same sessions in chDB: for whole, partial and off-midnight ranges, after late writes to
kept days, and with versions that FINAL must collapse. The sessions are written straight to
the store (days in the past cannot come through ingest, which stamps receive time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Mapping
from typing import Any

import pytest
import uncached

from services.api import queries
from services.api.day_sums import DaySums, Sums

from .dataset import Loaded

SITE = "days.test"
NOW = dt.datetime.now(dt.UTC)
TODAY = dt.datetime.combine(NOW.date(), dt.time(0), dt.UTC)


def session(n: int, started: dt.datetime, version: int, rng: random.Random) -> dict[str, Any]:
    day = started.date().toordinal()
    return {
        "site_id": SITE, "started_at": started, "session_id": f"daysum{n:010d}",
        "version": version, "last_stream": 0, "last_offset": n, "visitor_id": day * 1000 + n % 7,
        "last_event_at": started + dt.timedelta(seconds=30), "pageviews": rng.randint(1, 5),
        "events": version, "entry_page": "/", "exit_page": "/", "referrer": "",
        "referrer_source": "", "utm_source": "", "utm_medium": "", "utm_campaign": "",
        "device": "desktop", "browser": "Firefox", "os": "Linux", "country": "",
        "max_scroll": rng.randint(0, 100), "visible_ms": 1000, "duration": rng.randint(0, 90),
        "has_clicked": rng.randint(0, 1), "has_converted": rng.randint(0, 1), "goals": [],
        "is_bounce": rng.randint(0, 1),
    }


class Counting:
    def __init__(self, loaded: Loaded) -> None:
        self.store = loaded.parts.store
        self.calls: list[str] = []

    async def run(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(sql)
        return self.store.query(sql, params)

    def reference(self, start: dt.datetime, end: dt.datetime) -> Sums:
        fmt = "%Y-%m-%d %H:%M:%S"
        return Sums.of(self.store.query(uncached.KPI_SUMS, {
            "site": SITE, "start": start.strftime(fmt), "end": end.strftime(fmt)})[0])


@pytest.fixture(scope="module")
def sessions(loaded: Loaded) -> Counting:
    rng = random.Random(8)
    rows = []
    for n in range(600):
        started = TODAY - dt.timedelta(days=12) + dt.timedelta(
            seconds=rng.randint(0, 12 * 86400 + int((NOW - TODAY).total_seconds())))
        rows.append(session(n, started, 2, rng))
        if n % 3 == 0:  # an older version, written later: FINAL must still pick version 2
            rows.append(session(n, started, 1, rng))
    loaded.parts.store.insert("sessions", rows)
    return Counting(loaded)


RANGES = [
    (TODAY - dt.timedelta(days=10), TODAY + dt.timedelta(days=1)),  # whole days and today
    (TODAY - dt.timedelta(days=10), TODAY - dt.timedelta(days=3)),  # whole days only
    (TODAY - dt.timedelta(days=9, hours=5, minutes=30),  # a +05:30 site
     TODAY + dt.timedelta(hours=18, minutes=30)),
    (TODAY - dt.timedelta(days=6) + dt.timedelta(hours=8),  # a -08:00 site
     TODAY - dt.timedelta(days=1) + dt.timedelta(hours=8)),
    (TODAY - dt.timedelta(days=4, hours=-3), TODAY - dt.timedelta(days=4, hours=-20)),  # in a day
    (TODAY - dt.timedelta(days=40), TODAY - dt.timedelta(days=30)),  # no data
    (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), TODAY + dt.timedelta(days=1)),  # "all"
]


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_sums_equal_one_query_over_the_range(sessions: Counting, start: dt.datetime,
                                             end: dt.datetime) -> None:
    sums = DaySums(sessions.run)
    first = asyncio.run(sums.period(SITE, start, end, NOW))
    again = asyncio.run(sums.period(SITE, start, end, NOW))  # from the kept days
    assert first == again == sessions.reference(start, end)


def test_kept_days_are_not_read_again_until_written(sessions: Counting, loaded: Loaded) -> None:
    sums = DaySums(sessions.run)
    start, end = TODAY - dt.timedelta(days=11), TODAY - dt.timedelta(days=1)
    asyncio.run(sums.period(SITE, start, end, NOW))
    sessions.calls.clear()
    asyncio.run(sums.period(SITE, start, end, NOW))
    assert sessions.calls == [queries.DAY_PARTS]

    # a late write to a kept day: a new version of a session and a new session
    rng = random.Random(9)
    old = loaded.parts.store.query(
        "SELECT session_id, started_at FROM sessions FINAL WHERE site_id = {site:String} AND "
        "toDate(started_at) = {day:Date} LIMIT 1",
        {"site": SITE, "day": (TODAY - dt.timedelta(days=5)).date().isoformat()})[0]
    n = int(old["session_id"].removeprefix("daysum"))
    started = dt.datetime.fromisoformat(old["started_at"]).replace(tzinfo=dt.UTC)
    changed = session(n, started, 3, rng) | {"pageviews": 1000, "is_bounce": 0}
    added = session(9_999, TODAY - dt.timedelta(days=7, hours=-2), 1, rng)
    loaded.parts.store.insert("sessions", [changed, added])
    sessions.calls.clear()
    assert asyncio.run(sums.period(SITE, start, end, NOW)) == sessions.reference(start, end)
    assert queries.KPI_DAYS in sessions.calls
