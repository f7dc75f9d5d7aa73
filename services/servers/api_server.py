"""`clickport api`: the query API (and dashboard) as its own process on the Store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client.core import Metric
from starlette.applications import Starlette

from services.api.app import api_routes
from services.api.errors import not_found
from services.core.metrics import counter, render
from services.core.store import Store, StoreError
from services.servers.common import health_routes


def build_api_app(store: Store) -> Starlette:
    checks = {"ok": 0, "failed": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    async def ready() -> tuple[bool, dict[str, Any]]:
        try:
            await asyncio.to_thread(store.query, "SELECT 1 AS ok")
        except StoreError as exc:
            checks["failed"] += 1
            return False, {"store": f"unreachable: {exc}"}
        checks["ok"] += 1
        return True, {"store": "ok"}

    def readiness_metrics() -> list[Metric]:
        return [counter("clickport_api_store_checks", "Readiness checks of the Store", 0,
                        {k: float(v) for k, v in checks.items()}, "result")]

    async def metrics() -> bytes:
        return render(readiness_metrics)

    return Starlette(routes=[*api_routes(store), *health_routes(ready, metrics)],
                     lifespan=lifespan, exception_handlers={404: not_found})
