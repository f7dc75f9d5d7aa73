"""Outbound links (PRODUCT.md A2): destination domains by unique clicks (distinct sessions),
then clicks, then domain, at most 100; ``domain`` drills into that domain's URLs. The
example URL and text of a row come from one click, its latest, so they belong together."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.api import queries
from services.api.context import ApiContext
from services.api.errors import ApiError, api_route, json_response
from services.api.params import PERIOD_PARAMS
from services.core.urls import strip_www

MAX_DOMAIN_LENGTH = 253


def routes(ctx: ApiContext) -> list[Route]:
    async def outbound_links(request: Request) -> Response:
        site, query = await ctx.begin(request, (*PERIOD_PARAMS, "domain"))
        params: dict[str, Any] = {"site": site.domain, **ctx.period(query, site).bounds()}
        domain = query.get("domain")
        if domain is not None:
            domain = strip_www(domain.strip())
            if not domain or len(domain) > MAX_DOMAIN_LENGTH:
                raise ApiError(400, "'domain' must be a host name", "domain")
            params["domain"] = domain
            rows = await ctx.run(queries.OUTBOUND_URLS, params)
        else:
            rows = await ctx.run(queries.OUTBOUND_DOMAINS, params)
        for row in rows:
            del row["example"]
        return json_response({"site": site.domain, "results": rows})

    return [api_route("/api/outbound-links", {"GET": outbound_links})]
