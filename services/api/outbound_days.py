"""The outbound report's domain counts with the days before today kept in memory while their
data is unchanged (as day_sums.py does for the KPIs).

Per domain the report needs clicks, unique clicks (distinct sessions) and the latest click.
Clicks and the latest click add up over days. Unique clicks do through the first-click
marks (migration 008, docs/api.md): they are the first clicks in the period plus the
distinct (session, domain) pairs among the period's clicks whose first click lies outside
the period or is untracked. So a UTC day is kept as, per domain, its clicks, first clicks and
latest click, plus the few clicks whose first click was not that day ("crossing" clicks:
sessions that ran over midnight, or untracked ones). A period's whole days come from what is
kept: their crossing clicks whose first click also lies outside the period are the pairs to
add. Its partial days (a site's timezone is off UTC midnight) and today are read live with
the same two queries.

A kept day is reused only while the events table's active parts for that day are what they
were when it was read (the list is read first, so a write in between makes it stale, never
wrong); the events table is partitioned by UTC day (migration 006). The list is
`day_sums.day_parts`: this database's parts by name and content hash, which day_sums.py
says is exact on a ClickHouse server too. A day's crossing clicks and counts are two queries:
a write landing between them gives that request the day at two moments (each figure between
the ones before and after it), and the entry, kept under the list read before both, is not
reused. A day with more than
``crossing_cap`` crossing clicks is not worth keeping, and a day with unmarked clicks (rows
written before 008, or by an older release during a rollback) cannot be added up: a period
that has either is answered by `single_query`.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.api import queries
from services.api.day_sums import DAY, Run, day_parts, midnight, stamp, whole_days
from services.core.session import UNTRACKED_CLICK

CROSSING_CAP = 20_000  # crossing clicks per day (or per live range) worth adding up here
MAX_KEPT_ITEMS = 2_000_000  # domains and crossing clicks over all kept days; ~100 B each
MAX_ROWS = 100


_MARKER_MS = UNTRACKED_CLICK[0]  # first_click_at at or below this: untracked (or unmarked)


async def single_query(run: Run, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The domain rows in one query; a period with unmarked clicks is counted again by
    hashing every session, which does not depend on marks. Looking at the returned rows is
    enough: unmarked clicks can only add a session twice, never drop one, so a domain
    outside the first 100 is outside them in the exact order too."""
    rows = await run(queries.OUTBOUND_DOMAINS, params)
    unmarked = [int(row.pop("unmarked")) for row in rows]
    if any(unmarked):
        return await run(queries.OUTBOUND_DOMAINS_HASHED, params)
    return rows


@dataclass(frozen=True)
class _Day:
    parts: str
    domains: Mapping[str, tuple[int, int, int]]  # domain -> (clicks, first clicks, latest ms)
    # (domain, session id, first click ms); None: the day cannot be added up (too many
    # crossing clicks, or unmarked ones)
    crossing: tuple[tuple[str, str, int], ...] | None

    @property
    def size(self) -> int:
        return len(self.domains) + len(self.crossing or ())


class _Tally:
    """One period's counts as its days are added."""

    def __init__(self, start: dt.datetime, end: dt.datetime) -> None:
        self.start_ms = int(start.timestamp() * 1000)
        self.end_ms = int(end.timestamp() * 1000)
        self.domains: dict[str, list[int]] = {}
        self.pairs: set[tuple[str, str]] = set()

    def add_day(self, day: _Day) -> None:
        for domain, (clicks, firsts, latest) in day.domains.items():
            self.add_counts(domain, clicks, firsts, latest)
        for domain, sid, first_ms in day.crossing or ():
            if first_ms <= _MARKER_MS or not self.start_ms <= first_ms < self.end_ms:
                self.pairs.add((domain, sid))

    def add_counts(self, domain: str, clicks: int, firsts: int, latest: int) -> None:
        counts = self.domains.setdefault(domain, [0, 0, 0])
        counts[0] += clicks
        counts[1] += firsts
        counts[2] = max(counts[2], latest)

    def rows(self) -> list[dict[str, Any]]:
        unique = {domain: counts[1] for domain, counts in self.domains.items()}
        for domain, _ in self.pairs:
            # A crossing click is always among its day's counted clicks: the crossing query
            # runs first, so the counts see at least its rows (a row retention drops in
            # between would be the exception).
            if domain in unique:
                unique[domain] += 1
        order = sorted(self.domains, key=lambda d: (-unique[d], -self.domains[d][0], d))
        return [{"domain": d, "clicks": self.domains[d][0], "unique_clicks": unique[d],
                 "latest_ms": self.domains[d][2]} for d in order[:MAX_ROWS]]


class OutboundDays:
    def __init__(self, run: Run, crossing_cap: int = CROSSING_CAP) -> None:
        self._run = run
        self._cap = crossing_cap
        self._kept: OrderedDict[tuple[str, dt.date], _Day] = OrderedDict()
        self._kept_items = 0

    async def top_domains(self, site: str, start: dt.datetime, end: dt.datetime,
                          now: dt.datetime) -> list[dict[str, Any]]:
        """The rows of queries.OUTBOUND_DOMAINS for ``site`` over [start, end) (UTC)."""
        first, stop = whole_days(start, end, now.astimezone(dt.UTC).date())
        tally = _Tally(start, end)
        live = [(start, end)]
        if first < stop:
            days = await self._days(site, await day_parts(self._run, "events", first, stop))
            if any(day.crossing is None for day in days):
                return await self._single_query(site, start, end)
            for day in days:
                tally.add_day(day)
            live = [(start, midnight(first)), (midnight(stop), end)]
        for live_start, live_end in live:
            if live_start < live_end and not await self._add_live(tally, site, live_start,
                                                                 live_end):
                return await self._single_query(site, start, end)
        return tally.rows()

    async def _single_query(self, site: str, start: dt.datetime,
                            end: dt.datetime) -> list[dict[str, Any]]:
        return await single_query(self._run, {"site": site, "start": stamp(start),
                                              "end": stamp(end)})

    async def _add_live(self, tally: _Tally, site: str, start: dt.datetime,
                        end: dt.datetime) -> bool:
        """Add [start, end) read now; False if it has too many crossing clicks or any
        unmarked one."""
        bounds = {"site": site, "start": stamp(start), "end": stamp(end)}
        crossing = await self._run(queries.OUTBOUND_LIVE_CROSSING, {
            **bounds, "period_start_ms": tally.start_ms, "period_end_ms": tally.end_ms,
            "cap": self._cap + 1})
        if len(crossing) > self._cap:
            return False
        counts = await self._run(queries.OUTBOUND_DAY_COUNTS, bounds)
        if any(int(row["unmarked"]) for row in counts):
            return False
        for row in counts:
            tally.add_counts(row["domain"], int(row["clicks"]), int(row["firsts"]),
                             int(row["latest_ms"]))
        tally.pairs.update((row["domain"], row["session_id"]) for row in crossing)
        return True

    async def _days(self, site: str, parts: Mapping[dt.date, str]) -> list[_Day]:
        # A day without a partition has no events of any site and adds nothing.
        found: list[_Day] = []
        stale = []
        for day in sorted(parts):
            kept = self._kept.get((site, day))
            if kept is not None and kept.parts == parts[day]:
                found.append(kept)
                self._kept.move_to_end((site, day))
            else:
                stale.append(day)
        if stale:
            found.extend(await self._read_days(site, stale, parts))
        return found

    async def _read_days(self, site: str, stale: list[dt.date],
                         parts: Mapping[dt.date, str]) -> Iterable[_Day]:
        bounds = {"site": site, "start": stamp(midnight(stale[0])),
                  "end": stamp(midnight(stale[-1] + DAY))}
        crossing_rows = await self._run(queries.OUTBOUND_DAY_CROSSING,
                                        {**bounds, "cap": self._cap + 1})
        count_rows = await self._run(queries.OUTBOUND_DAY_COUNTS, bounds)
        domains: dict[str, dict[str, tuple[int, int, int]]] = {}
        unmarked = set()
        for row in count_rows:
            domains.setdefault(row["day"], {})[row["domain"]] = (
                int(row["clicks"]), int(row["firsts"]), int(row["latest_ms"]))
            if int(row["unmarked"]):
                unmarked.add(row["day"])
        crossing: dict[str, list[tuple[str, str, int]]] = {}
        for row in crossing_rows:
            crossing.setdefault(row["day"], []).append(
                (row["domain"], row["session_id"], int(row["first_ms"])))
        read = []
        for day in stale:
            text = day.isoformat()
            clicks = crossing.get(text, [])
            summable = len(clicks) <= self._cap and text not in unmarked
            kept = _Day(parts[day], domains.get(text, {}), tuple(clicks) if summable else None)
            self._keep(site, day, kept)
            read.append(kept)
        return read

    def _keep(self, site: str, day: dt.date, kept: _Day) -> None:
        old = self._kept.pop((site, day), None)
        self._kept_items -= old.size if old is not None else 0
        self._kept[(site, day)] = kept
        self._kept_items += kept.size
        while self._kept_items > MAX_KEPT_ITEMS and len(self._kept) > 1:
            _, dropped = self._kept.popitem(last=False)
            self._kept_items -= dropped.size
