"""A4 KPIs: exact figures for the loaded data set, the previous equal period, zero safety
and half-up rounding."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.api.day_sums import Sums
from services.api.kpis import kpis_of, ratio

from .dataset import Loaded

SITE_A_KPIS = {
    "visitors": 4, "sessions": 8, "pageviews": 9, "views_per_visit": 1.13,
    "bounce_rate": 25.0, "conversions": 3, "conversion_rate": 37.5,
    "avg_duration": 4, "avg_scroll": 13,
}
ZERO = {"visitors": 0, "sessions": 0, "pageviews": 0, "views_per_visit": 0.0,
        "bounce_rate": 0.0, "conversions": 0, "conversion_rate": 0.0, "avg_duration": 0,
        "avg_scroll": 0}


def kpis(loaded: Loaded, key: str | None = None, **params: str) -> dict[str, object]:
    response = loaded.get("/api/kpis", key, **params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_kpis_for_the_period_are_exact(loaded: Loaded) -> None:
    body = kpis(loaded, period="7d")
    assert body["results"] == SITE_A_KPIS
    assert body["previous"] == ZERO


def data_day(loaded: Loaded) -> dt.date:
    """The UTC day the data set was posted on (from the data, not the clock, so a run that
    crosses midnight still asks for the right day)."""
    started = loaded.get("/api/sessions", period="7d", limit="1").json()["results"][0]
    return dt.date.fromisoformat(started["started_at"][:10])


def test_previous_period_is_the_equal_period_before(loaded: Loaded) -> None:
    today = data_day(loaded)
    day = dt.timedelta(days=1)
    this_day = kpis(loaded, **{"from": today.isoformat(), "to": (today + day).isoformat()})
    assert (this_day["results"], this_day["previous"]) == (SITE_A_KPIS, ZERO)
    next_day = kpis(loaded, **{"from": (today + day).isoformat(),
                              "to": (today + 2 * day).isoformat()})
    assert (next_day["results"], next_day["previous"]) == (ZERO, SITE_A_KPIS)
    assert next_day["previous_period"] == {"start": f"{today}T00:00:00.000Z",
                                           "end": f"{today + day}T00:00:00.000Z"}


def test_site_b_has_its_own_kpis(loaded: Loaded) -> None:
    assert kpis(loaded, loaded.key_b, period="7d")["results"] == {
        "visitors": 1, "sessions": 2, "pageviews": 2, "views_per_visit": 1.0,
        "bounce_rate": 0.0, "conversions": 0, "conversion_rate": 0.0, "avg_duration": 0,
        "avg_scroll": 0}


def test_ratios_round_half_up_and_are_zero_safe() -> None:
    assert ratio(9, 8, places=2) == Decimal("1.13")
    assert ratio(1, 8, 100, 1) == Decimal("12.5")
    assert ratio(1, 3, 100, 1) == Decimal("33.3")
    assert ratio(28, 8) == Decimal(4)
    assert ratio(5, 0, 100, 1) == 0


def test_no_sessions_means_zeros_and_conversion_rate_never_exceeds_100() -> None:
    assert kpis_of(Sums()).sessions == 0 and kpis_of(Sums()).conversion_rate == 0.0
    row = {"sessions": 2, "visitors": 1, "pageviews": 2, "bounces": 0, "conversions": 5,
           "duration_total": 0, "scroll_total": 0}
    assert kpis_of(Sums.of(row)).conversion_rate == 100.0
