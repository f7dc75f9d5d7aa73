from __future__ import annotations

import datetime as dt

import pytest

from services.api.periods import PeriodError, resolve_period

NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


def test_today_in_the_sites_timezone() -> None:
    period = resolve_period("today", None, None, "Europe/Berlin", NOW)
    assert period.start == dt.datetime(2026, 3, 9, 23, 0, tzinfo=dt.UTC)
    assert period.end == dt.datetime(2026, 3, 10, 23, 0, tzinfo=dt.UTC)


def test_7d_ends_tomorrow_and_previous_is_equal_length() -> None:
    period = resolve_period("7d", None, None, "UTC", NOW)
    assert period.end - period.start == dt.timedelta(days=7)
    assert period.previous().end == period.start


def test_from_to_is_end_exclusive() -> None:
    period = resolve_period(None, "2026-01-01", "2026-01-02", "UTC", NOW)
    assert period.end - period.start == dt.timedelta(days=1)


@pytest.mark.parametrize(("period", "date_from", "date_to"), [
    ("forever", None, None), (None, "2026-01-01", None), (None, "2026-02-01", "2026-01-01"),
    (None, "yesterday", "2026-01-01"), (None, "2000-01-01", "2026-01-01"),
    (None, "2026-01-01'; DROP TABLE events; --", "2026-02-01"),
])
def test_bad_periods_are_rejected(period: str | None, date_from: str | None,
                                  date_to: str | None) -> None:
    with pytest.raises(PeriodError):
        resolve_period(period, date_from, date_to, "UTC", NOW)


def test_12m_is_the_same_date_a_year_earlier() -> None:
    leap_day = resolve_period("12m", None, None, "UTC", dt.datetime(2028, 2, 28, tzinfo=dt.UTC))
    assert leap_day.start == dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
    assert leap_day.end == dt.datetime(2028, 2, 29, tzinfo=dt.UTC)
    spanning = resolve_period("12m", None, None, "UTC", dt.datetime(2028, 3, 1, tzinfo=dt.UTC))
    assert spanning.end - spanning.start == dt.timedelta(days=366)
