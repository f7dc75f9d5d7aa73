"""Reporting periods (PRODUCT.md A6) in the site's time zone, as UTC instants.

``today``, ``yesterday``, ``7d``, ``30d`` (default), ``90d``, ``12m``, ``all``, or ``from``/
``to`` dates (``to`` exclusive). Every period also knows the previous period of equal length,
for comparisons. Longest custom range: 5 years.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

PERIODS = ("today", "yesterday", "7d", "30d", "90d", "12m", "all")
MAX_RANGE_DAYS = 5 * 366
# What the Store's DateTime64 parameters take, with room for the previous period.
EARLIEST_DATE, LATEST_DATE = dt.date(1900, 1, 1), dt.date(2299, 12, 31)
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    start: dt.datetime  # inclusive, UTC
    end: dt.datetime  # exclusive, UTC

    def previous(self) -> Period:
        length = self.end - self.start
        return Period(self.start - length, self.start)

    def bounds(self) -> dict[str, str]:
        fmt = "%Y-%m-%d %H:%M:%S"
        return {"start": self.start.strftime(fmt), "end": self.end.strftime(fmt)}


def resolve_period(
    period: str | None, date_from: str | None, date_to: str | None, timezone: str,
    now: dt.datetime,
) -> Period:
    zone = zoneinfo.ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    if date_from or date_to:
        if not (date_from and date_to):
            raise PeriodError("give both 'from' and 'to' (YYYY-MM-DD, 'to' exclusive)")
        first, last = _date(date_from, "from"), _date(date_to, "to")
        if not (EARLIEST_DATE <= first and last <= LATEST_DATE):
            raise PeriodError(f"dates must lie between {EARLIEST_DATE} and {LATEST_DATE}")
        if last <= first:
            raise PeriodError("'to' must be after 'from'")
        if (last - first).days > MAX_RANGE_DAYS:
            raise PeriodError(f"a range may span at most {MAX_RANGE_DAYS} days")
        return _local(first, last, zone)
    name = period or "30d"
    tomorrow = today + dt.timedelta(days=1)
    if name == "today":
        return _local(today, tomorrow, zone)
    if name == "yesterday":
        return _local(today - dt.timedelta(days=1), today, zone)
    if name in ("7d", "30d", "90d"):
        return _local(tomorrow - dt.timedelta(days=int(name[:-1])), tomorrow, zone)
    if name == "12m":
        return _local(_year_before(tomorrow), tomorrow, zone)
    if name == "all":
        return Period(EPOCH, _local(tomorrow, tomorrow, zone).end)
    raise PeriodError(f"unknown period {name!r}; use one of {', '.join(PERIODS)} or from/to")


def _date(text: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"'{name}' must be a date like 2026-01-31") from None


def _local(first: dt.date, last: dt.date, zone: zoneinfo.ZoneInfo) -> Period:
    start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
    end = dt.datetime.combine(last, dt.time(), zone).astimezone(dt.UTC)
    return Period(start, end)



def _year_before(day: dt.date) -> dt.date:
    """The same calendar date a year earlier; 29 February maps to 1 March."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return dt.date(day.year - 1, 3, 1)
