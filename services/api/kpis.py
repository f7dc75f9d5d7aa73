"""KPIs (PRODUCT.md A4) for the period and the previous period of equal length.

Every figure describes one population, the sessions that started in the period (read from
``sessions FINAL``), so the figures agree with each other and with ``GET /api/sessions``:

- ``visitors``: distinct visitor ids. Ids rotate daily (I3), so this counts distinct
  (day, visitor) pairs: a person seen on three days counts three times, as in Plausible.
  A session's visitor id is that of its first event, so it is counted on the UTC day the
  session started, and the figure is a sum over UTC days (day_sums.py keeps finished days).
- ``pageviews``: the sessions' pageview counts summed; ``views_per_visit`` = pageviews ÷
  sessions, 2 decimals.
- ``bounce_rate`` and ``conversion_rate``: % of sessions, 1 decimal; conversions are sessions
  with ``has_converted``, so the rate is never above 100.
- ``avg_duration`` (seconds) and ``avg_scroll`` (%): means over all sessions, whole numbers.

Rounding is half up on exact decimals. With no sessions every figure is 0.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.api.context import ApiContext
from services.api.day_sums import DaySums, Sums
from services.api.errors import api_route, json_response
from services.api.params import PERIOD_PARAMS
from services.api.shapes import KpiReport, Kpis, Range, iso


def ratio(part: int, whole: int, scale: int = 1, places: int = 0) -> Decimal:
    """``part / whole * scale`` rounded half up to ``places`` decimals; 0 when whole is 0."""
    if whole <= 0:
        return Decimal(0)
    exact = Decimal(part * scale) / Decimal(whole)
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def kpis_of(sums: Sums) -> Kpis:
    conversions = min(sums.conversions, sums.sessions)
    return Kpis(
        visitors=sums.visitors,
        sessions=sums.sessions,
        pageviews=sums.pageviews,
        views_per_visit=float(ratio(sums.pageviews, sums.sessions, places=2)),
        bounce_rate=float(ratio(sums.bounces, sums.sessions, 100, 1)),
        conversions=conversions,
        conversion_rate=float(ratio(conversions, sums.sessions, 100, 1)),
        avg_duration=int(ratio(sums.duration_total, sums.sessions)),
        avg_scroll=int(ratio(sums.scroll_total, sums.sessions)),
    )


def routes(ctx: ApiContext) -> list[Route]:
    day_sums = DaySums(ctx.run)

    async def kpis(request: Request) -> Response:
        site, query = await ctx.begin(request, PERIOD_PARAMS)
        period = ctx.period(query, site)
        previous = period.previous()
        now = ctx.clock()
        current, before = await day_sums.periods(
            site.domain, [(period.start, period.end), (previous.start, previous.end)], now)
        return json_response(KpiReport(
            site=site.domain,
            period=Range(iso(period.start), iso(period.end)),
            previous_period=Range(iso(previous.start), iso(previous.end)),
            results=kpis_of(current),
            previous=kpis_of(before),
        ))

    return [api_route("/api/kpis", {"GET": kpis})]
