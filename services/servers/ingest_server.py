"""`clickport ingest`: the beacon endpoint and tracker as its own process, publishing to
Kafka. Sites and visitor salts are loaded from the Store at start and refreshed in the
background, so the request path never queries the Store. On SIGTERM uvicorn stops accepting
and finishes in-flight requests; then the producer flushes what it holds (drain)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from services.core import sites as site_rules
from services.core.metrics import render
from services.core.settings import BotFilter, Settings
from services.core.store import Store
from services.core.transport import Transport
from services.ingest.app import IngestStats, ingest_routes
from services.ingest.endpoint import BeaconFastPath, with_fast_beacon_path
from services.ingest.metrics import ingest_metrics
from services.ingest.salts import SaltBook
from services.servers.common import every, health_routes, stop_tasks

SITES_REFRESH_SECONDS = 5.0


def build_ingest_app(settings: Settings, transport: Transport, store: Store) -> BeaconFastPath:
    known = site_rules.KnownSites()
    stats = IngestStats()
    salts = SaltBook(store, pepper=settings.visitor_salt_secret.encode())
    tasks: list[asyncio.Task[None]] = []
    state = {"started": False}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(known.reload, store)
        await salts.refresh()
        await transport.start()
        state["started"] = True
        tasks.extend([asyncio.create_task(every(SITES_REFRESH_SECONDS,
                                                lambda: known.reload(store), "sites")),
                      asyncio.create_task(salts.run())])
        try:
            yield
        finally:
            await stop_tasks(tasks)
            await transport.stop()  # flushes the producer's buffer
            store.close()

    async def ready() -> tuple[bool, dict[str, Any]]:
        ok = state["started"] and salts.ready
        return ok, {"transport": transport.describe(), "visitor_salt_days": salts.days(),
                    "accepted": stats.accepted, "unavailable": stats.unavailable}

    async def metrics() -> bytes:
        return render(lambda: ingest_metrics(stats))

    routes = [
        *ingest_routes(transport, known, max_body_bytes=settings.max_body_bytes,
                       rate_limit_per_minute=settings.rate_limit_per_minute,
                       rate_limit_max_clients=settings.rate_limit_max_clients,
                       trusted_proxies=settings.trusted_proxies,
                       bot_filter=settings.bot_filter is BotFilter.ON, salts=salts,
                       stats=stats, geoip_db=settings.geoip_db,
                       excluded_paths=settings.excluded_paths),
        *health_routes(ready, metrics),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.ingest_stats = stats
    return with_fast_beacon_path(app)
