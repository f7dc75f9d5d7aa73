"""What every handler needs: the Store, the key cache and the clock, and the three steps
each read starts with (authorise the key, check the query parameters, resolve the period).
Store failures become 503 here, once; their text is logged, not sent to the client."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from services.api.auth import KeyCache, authorised_site
from services.api.errors import ApiError
from services.api.params import query_of
from services.api.periods import Period, PeriodError, resolve_period
from services.core.repeated_log import RepeatedLog
from services.core.sites import Site
from services.core.store import Store, StoreError

log = logging.getLogger("clickport.api")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ApiContext:
    store: Store
    keys: KeyCache
    clock: Callable[[], dt.datetime] = utc_now
    goals_changed: Callable[[], None] = lambda: None  # called after every goal write
    # site -> (when read, goal id -> (name, is_conversion)): see goals.goal_names
    goal_names: dict[str, tuple[float, dict[str, tuple[str, bool]]]] = field(
        default_factory=dict)
    # Store failures repeat once per request while the Store is down: one line per cause
    # and interval (services.core.repeated_log).
    store_errors: RepeatedLog = field(default_factory=lambda: RepeatedLog(log, "%s"))

    async def begin(self, request: Request, allowed: Iterable[str]) -> tuple[Site, dict[str, str]]:
        """Authorise the key (401/403 first), then check the query parameters (400)."""
        try:
            site = await authorised_site(request, request.query_params, self.keys)
        except StoreError as exc:
            self.store_errors.report(f"key lookup failed, answering 503: {exc}")
            raise ApiError(503, "storage unavailable, retry later") from exc
        return site, query_of(request, allowed)

    def period(self, query: Mapping[str, str], site: Site) -> Period:
        try:
            return resolve_period(query.get("period"), query.get("from"), query.get("to"),
                                  site.timezone, self.clock())
        except PeriodError as exc:
            raise ApiError(400, str(exc)) from exc

    async def run(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            return await asyncio.to_thread(self.store.query, sql, params)
        except StoreError as exc:
            self.store_errors.report(f"query failed: {exc}")
            raise ApiError(503, "storage unavailable, retry later") from exc

    async def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        try:
            await asyncio.to_thread(self.store.insert, table, rows)
        except StoreError as exc:
            self.store_errors.report(f"insert into {table} failed: {exc}")
            raise ApiError(503, "storage unavailable, retry later") from exc
