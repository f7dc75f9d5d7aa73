"""Outbound links (PRODUCT.md A2): destination domains by unique clicks (distinct sessions),
then clicks, then domain, at most 100; ``domain`` drills into that domain's URLs. The
example URL and text of a row come from one click, its latest (ties broken by the greater
event id), so they belong together. The domain counts keep finished days in memory
(outbound_days.py); the drill-down is one query. Domains are in punycode as stored; each row
carries the Unicode form and look-alike warnings of its domain (idn.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.api import queries
from services.api.context import ApiContext
from services.api.errors import ApiError, api_route, json_response
from services.api.idn import domain_form
from services.api.outbound_days import OutboundDays, single_query
from services.api.params import PERIOD_PARAMS
from services.core.urls import ascii_host, strip_www

MAX_DOMAIN_LENGTH = 253


Run = Callable[[str, Mapping[str, Any]], Awaitable[list[dict[str, Any]]]]


async def outbound_rows(run: Run, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report's rows in single queries: the domains, or with ``domain`` in params that
    domain's URLs, each with the URL and text of its latest click (see queries.py)."""
    if "domain" in params:
        rows = await run(queries.OUTBOUND_URLS, params)
    else:
        rows = await single_query(run, params)
    return await with_examples(run, rows, params)


async def with_examples(run: Run, rows: list[dict[str, Any]],
                        params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Give each counted row (with its ``latest_ms``) the URL and text of its latest click."""
    by_url = "domain" in params
    name = "url" if by_url else "domain"
    if not rows:
        return []
    latest = sorted({int(row.pop("latest_ms")) for row in rows})
    found = await run(queries.OUTBOUND_URL_EXAMPLES if by_url
                      else queries.OUTBOUND_DOMAIN_EXAMPLES, {**params, "latest": latest})
    examples = {row[name]: row["example"] for row in found}
    for row in rows:
        row["example_url"], row["example_text"] = examples.get(row[name], ("", ""))
        if by_url:
            row["domain"] = params["domain"]
        row.update(domain_form(row["domain"]).fields())
    return rows


def routes(ctx: ApiContext) -> list[Route]:
    days = OutboundDays(ctx.run)

    async def outbound_links(request: Request) -> Response:
        site, query = await ctx.begin(request, (*PERIOD_PARAMS, "domain"))
        period = ctx.period(query, site)
        params: dict[str, Any] = {"site": site.domain, **period.bounds()}
        domain = query.get("domain")
        if domain is None:
            counted = await days.top_domains(site.domain, period.start, period.end, ctx.clock())
            rows = await with_examples(ctx.run, counted, params)
        else:
            domain = strip_www(ascii_host(domain.strip()))  # as stored: münchen.de too
            if not domain or len(domain) > MAX_DOMAIN_LENGTH:
                raise ApiError(400, "'domain' must be a host name", "domain")
            params["domain"] = domain
            rows = await outbound_rows(ctx.run, params)
        return json_response({"site": site.domain, "results": rows})

    return [api_route("/api/outbound-links", {"GET": outbound_links})]
