"""API keys (PRODUCT.md A1): every request names its key in ``x-api-key``; the key belongs
to one site, and every query the API runs is for that site only. A ``site`` parameter, when
given, must name the key's own site (``www.`` and letter case ignored), else 403."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from starlette.requests import Request

from services.api.errors import ApiError
from services.core import sites as site_rules
from services.core.store import Store
from services.core.urls import strip_www

KEY_CACHE_SECONDS = 30.0
_KEY_CACHE_MAX = 10_000


class KeyCache:
    """Key -> (its site's domain, the site's row) for a short while, so a dashboard's burst of
    reads costs one lookup of each (each is a query; at 10 M events the site's alone was a
    tenth of a timeline request's time). A revoked key, a deleted site or a changed time
    zone take effect within `KEY_CACHE_SECONDS` in a process that saw the key."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, tuple[float, str | None, site_rules.Site | None]] = {}

    async def site_for(self, key: str) -> tuple[str | None, site_rules.Site | None]:
        """The key's site domain (None: unknown or revoked key) and that site (None: gone)."""
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < KEY_CACHE_SECONDS:
            return hit[1], hit[2]
        domain, site = await asyncio.to_thread(self._resolve, key)
        if len(self._cache) > _KEY_CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), domain, site)
        return domain, site

    def _resolve(self, key: str) -> tuple[str | None, site_rules.Site | None]:
        domain = site_rules.site_for_key(self._store, key)
        return domain, (site_rules.get_site(self._store, domain) if domain else None)


async def authorised_site(request: Request, query: Mapping[str, str], keys: KeyCache
                          ) -> site_rules.Site:
    """The site the request's key may read, or `ApiError` 401/403."""
    key = request.headers.get("x-api-key", "")
    if not key:
        raise ApiError(401, "missing x-api-key header")
    domain, site = await keys.site_for(key)
    if domain is None:
        raise ApiError(401, "unknown or revoked API key")
    asked = query.get("site")
    if asked is not None and strip_www(asked.strip().lower()) != domain:
        raise ApiError(403, "this key does not give access to that site", "site")
    if site is None:
        raise ApiError(403, "the key's site no longer exists")
    return site
