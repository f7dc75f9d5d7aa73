"""KPIs (PRODUCT.md A4) for the period and the previous period of equal length.

Every figure describes one population, the sessions that started in the period (read from
``sessions FINAL``), so the figures agree with each other and with ``GET /api/sessions``:

- ``visitors``: distinct visitor ids. Ids rotate daily (I3), so this counts distinct
  (day, visitor) pairs: a person seen on three days counts three times, as in Plausible.
  A session's visitor id is that of its first event.
- ``pageviews``: the sessions' pageview counts summed; ``views_per_visit`` = pageviews ÷
  sessions, 2 decimals.
- ``bounce_rate`` and ``conversion_rate``: % of sessions, 1 decimal; conversions are sessions
  with ``has_converted``, so the rate is never above 100.
- ``avg_duration`` (seconds) and ``avg_scroll`` (%): means over all sessions, whole numbers.

Rounding is half up on exact decimals. With no sessions every figure is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.api import queries
from services.api.context import ApiContext
from services.api.errors import api_route, json_response
from services.api.params import PERIOD_PARAMS
from services.api.shapes import KpiReport, Kpis, Range, iso


def ratio(part: int, whole: int, scale: int = 1, places: int = 0) -> Decimal:
    """``part / whole * scale`` rounded half up to ``places`` decimals; 0 when whole is 0."""
    if whole <= 0:
        return Decimal(0)
    exact = Decimal(part * scale) / Decimal(whole)
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def kpis_of(row: Mapping[str, Any] | None) -> Kpis:
    if row is None:
        return Kpis(0, 0, 0, 0.0, 0.0, 0, 0.0, 0, 0)
    sessions, pageviews = int(row["sessions"]), int(row["pageviews"])
    conversions = min(int(row["conversions"]), sessions)
    return Kpis(
        visitors=int(row["visitors"]),
        sessions=sessions,
        pageviews=pageviews,
        views_per_visit=float(ratio(pageviews, sessions, places=2)),
        bounce_rate=float(ratio(int(row["bounces"]), sessions, 100, 1)),
        conversions=conversions,
        conversion_rate=float(ratio(conversions, sessions, 100, 1)),
        avg_duration=int(ratio(int(row["duration_total"]), sessions)),
        avg_scroll=int(ratio(int(row["scroll_total"]), sessions)),
    )


def routes(ctx: ApiContext) -> list[Route]:
    async def kpis(request: Request) -> Response:
        site, query = await ctx.begin(request, PERIOD_PARAMS)
        period = ctx.period(query, site)
        previous = period.previous()
        rows = await ctx.run(queries.KPIS, {
            "site": site.domain, **period.bounds(),
            "previous_start": previous.bounds()["start"],
        })
        by_period = {bool(r["current"]): r for r in rows}
        return json_response(KpiReport(
            site=site.domain,
            period=Range(iso(period.start), iso(period.end)),
            previous_period=Range(iso(previous.start), iso(previous.end)),
            results=kpis_of(by_period.get(True)),
            previous=kpis_of(by_period.get(False)),
        ))

    return [api_route("/api/kpis", {"GET": kpis})]
