"""KPI sums per UTC day, with the days before today kept in memory while their data is unchanged.

Every KPI figure (kpis.py) is a sum over UTC days of the sessions that started that day:
counts and totals obviously, and visitors too, because a visitor id is salted per UTC day
(I3) and a session's id is that of its first event, which is also its start. So a period's
figures are the sums of its whole UTC days plus the sums over its partial days (a period in
a site's timezone starts and ends off UTC midnight) and over today.

The sessions table is partitioned by the UTC day a session started (migration 006), so
every write that can change a day's sums, a new session, a new version of one, a merge or a
mutation, changes that day's set of active parts. A kept day is reused only while that set
is what it was when the day was summed; it is read before the sums, so a write landing in
between makes the kept entry stale, never wrong. Today is always read live: it is written
to every second. The cost of a request is then one small ``system.parts`` read, the live
partial days and any day changed since it was kept (docs/api.md).

This relies on ``system.parts`` describing the whole table, which holds for chDB and a
single ClickHouse server (what the Stores support). On a server it stays exact with other
writers (tests/integration/test_api_caches_on_server.py: three sessionizer processes, and
merges, while the API reads), because:

- a part is listed in ``system.parts`` from the moment reads see its rows (both come from
  the table's set of active parts), whichever process or merge made it;
- the list holds this database's parts only: a server's other databases write to the same
  days without touching it;
- each part is listed by name and content hash (``hash_of_all_files``). Names alone are not
  unique over a table's life on a server: a table dropped and made again (a rebuild, a
  restore, another client resetting it) numbers its parts from 1 again, as does an emptied
  table after a restart, so a day's names can come back holding other rows while the API
  runs on. chDB cannot see that happen: the one process holding its data holds this cache;
- ClickHouseStore keeps the server's query cache off (a user profile may turn it on): a
  cached result would be summed under a newer part list.

A request that reads while writes land gets each day it reads as it was at some moment of
the request; a kept day it reuses is the day as it is.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.api import queries

Run = Callable[[str, Mapping[str, Any]], Awaitable[list[dict[str, Any]]]]
DAY = dt.timedelta(days=1)
SUMMED = ("sessions", "visitors", "pageviews", "bounces", "conversions", "duration_total",
          "scroll_total")
MAX_KEPT_DAYS = 100_000  # (site, day) entries; about 200 bytes each


@dataclass(frozen=True)
class Sums:
    sessions: int = 0
    visitors: int = 0
    pageviews: int = 0
    bounces: int = 0
    conversions: int = 0
    duration_total: int = 0
    scroll_total: int = 0

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Sums:
        return cls(*(int(row[name]) for name in SUMMED))

    def __add__(self, other: Sums) -> Sums:
        return Sums(*(getattr(self, n) + getattr(other, n) for n in SUMMED))


def whole_days(start: dt.datetime, end: dt.datetime, today: dt.date) -> tuple[dt.date, dt.date]:
    """The UTC days [first, stop) that lie wholly inside [start, end) and before today."""
    first = start.date() if start.time() == dt.time(0) else start.date() + DAY
    stop = min(end.date(), today)
    return first, max(first, stop)


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), dt.UTC)


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


async def day_parts(run: Run, table: str, first: dt.date, stop: dt.date) -> dict[dt.date, str]:
    """Day -> its partition's active parts in ``table``, for the days in [first, stop) that
    have one."""
    rows = await run(queries.DAY_PARTS, {"table": table, "first": first.isoformat(),
                                         "stop": stop.isoformat()})
    return {dt.date.fromisoformat(row["day"]): row["parts"] for row in rows}


class DaySums:
    def __init__(self, run: Run) -> None:
        self._run = run
        self._kept: OrderedDict[tuple[str, dt.date], tuple[str, Sums]] = OrderedDict()

    async def period(self, site: str, start: dt.datetime, end: dt.datetime,
                     now: dt.datetime) -> Sums:
        """The sums of the sessions of ``site`` that started in [start, end) (UTC)."""
        return (await self.periods(site, [(start, end)], now))[0]

    async def periods(self, site: str, ranges: Sequence[tuple[dt.datetime, dt.datetime]],
                      now: dt.datetime) -> list[Sums]:
        """`period` for each range, the part lists of their whole days read in one query."""
        today = now.astimezone(dt.UTC).date()
        wholes = [whole_days(start, end, today) for start, end in ranges]
        spans = [(first, stop) for first, stop in wholes if first < stop]
        parts = await day_parts(self._run, "sessions", min(f for f, _ in spans),
                                max(s for _, s in spans)) if spans else {}
        results = []
        for (start, end), (first, stop) in zip(ranges, wholes, strict=True):
            if first == stop:  # no whole day before today: read it all live
                results.append(await self._live(site, start, end))
                continue
            total = await self._live(site, start, midnight(first))
            total += await self._kept_days(site, {d: p for d, p in parts.items()
                                                  if first <= d < stop})
            total += await self._live(site, midnight(stop), end)
            results.append(total)
        return results

    async def _live(self, site: str, start: dt.datetime, end: dt.datetime) -> Sums:
        if start >= end:
            return Sums()
        rows = await self._run(queries.KPI_DAYS, {"site": site, "start": stamp(start),
                                                 "end": stamp(end)})
        return sum((Sums.of(row) for row in rows), Sums())

    async def _kept_days(self, site: str, parts: Mapping[dt.date, str]) -> Sums:
        # A day without a partition has no sessions of any site: it adds nothing, and is
        # neither read nor kept (so a long period costs what its days with data cost).
        total = Sums()
        stale = []
        for day in sorted(parts):
            kept = self._kept.get((site, day))
            if kept is not None and kept[0] == parts[day]:
                total += kept[1]
                self._kept.move_to_end((site, day))
            else:
                stale.append(day)
        if stale:
            rows = await self._run(queries.KPI_DAYS, {
                "site": site, "start": stamp(midnight(stale[0])),
                "end": stamp(midnight(stale[-1] + DAY))})
            summed = {dt.date.fromisoformat(row["day"]): Sums.of(row) for row in rows}
            for day in stale:
                sums = summed.get(day, Sums())
                self._keep(site, day, parts[day], sums)
                total += sums
        return total

    def _keep(self, site: str, day: dt.date, parts: str, sums: Sums) -> None:
        self._kept[(site, day)] = (parts, sums)
        self._kept.move_to_end((site, day))
        while len(self._kept) > MAX_KEPT_DAYS:
            self._kept.popitem(last=False)
