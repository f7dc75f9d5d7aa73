"""The query API routes. Every read needs ``x-api-key``; a key reads only its own site.
Store errors become 503, bad parameters 400 with a message; parameters are always bound."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.api import queries
from services.api.periods import PeriodError, resolve_period
from services.core import sites as site_rules
from services.core.store import Store, StoreError
from services.core.urls import strip_www

KEY_CACHE_SECONDS = 30.0


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


class KeyCache:
    """Key -> site for a short while, so a dashboard's burst of reads costs one lookup."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def site_for(self, key: str) -> str | None:
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < KEY_CACHE_SECONDS:
            return hit[1]
        site = await asyncio.to_thread(site_rules.site_for_key, self._store, key)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), site)
        return site


def api_routes(store: Store, now: Callable[[], dt.datetime] | None = None) -> list[Route]:
    keys = KeyCache(store)
    clock = now or (lambda: dt.datetime.now(dt.UTC))

    async def authorised_site(request: Request) -> site_rules.Site:
        key = request.headers.get("x-api-key", "")
        if not key:
            raise ApiError(401, "missing x-api-key header")
        site = await keys.site_for(key)
        if site is None:
            raise ApiError(401, "unknown or revoked API key")
        asked = request.query_params.get("site")
        if asked is not None and strip_www(asked.strip()) != site:
            raise ApiError(403, "this key does not give access to that site")
        found = await asyncio.to_thread(site_rules.get_site, store, site)
        if found is None:
            raise ApiError(403, "the key's site no longer exists")
        return found

    async def run(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            return await asyncio.to_thread(store.query, sql, params)
        except StoreError as exc:
            raise ApiError(503, f"storage unavailable: {exc}") from exc

    def period_of(request: Request, site: site_rules.Site) -> dict[str, str]:
        q = request.query_params
        try:
            period = resolve_period(q.get("period"), q.get("from"), q.get("to"),
                                    site.timezone, clock())
        except PeriodError as exc:
            raise ApiError(400, str(exc)) from exc
        return period.bounds()

    async def outbound_links(request: Request) -> Response:
        site = await authorised_site(request)
        params: dict[str, Any] = {"site": site.domain, **period_of(request, site)}
        domain = request.query_params.get("domain")
        if domain is not None:
            domain = strip_www(domain.strip())
            if not domain or len(domain) > 253 or any(ord(c) < 32 for c in domain):
                raise ApiError(400, "'domain' must be a host name")
            params["domain"] = domain
            rows = await run(queries.OUTBOUND_URLS, params)
        else:
            rows = await run(queries.OUTBOUND_DOMAINS, params)
        for row in rows:
            del row["example"]
        return json_response({"site": site.domain, "results": rows})

    return [Route("/api/outbound-links", _guard(outbound_links), methods=["GET"])]


def _guard(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def guarded(request: Request) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except ApiError as exc:
            return json_response({"error": str(exc)}, exc.status)

    return guarded
