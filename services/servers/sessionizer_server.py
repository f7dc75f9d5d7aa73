"""`clickport sessionizer`: one consumer-group member. Run several (up to the partition
count) to spread partitions; each serves /healthz, /readyz and /metrics. On SIGTERM the
worker flushes its batch, commits, and leaves the group before the process exits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from services.core.metrics import render
from services.core.readiness import Problem, problems_body, readiness_metrics
from services.core.settings import Settings
from services.core.store import Store
from services.core.store_damage import CHECK_SECONDS, STORE_DAMAGED, DamageWatch
from services.core.transport import Transport
from services.servers.common import every, health_routes, stop_tasks
from services.sessionizer.health import WORKER_PROBLEMS, worker_details, worker_problems
from services.sessionizer.metrics import sessionizer_metrics
from services.sessionizer.supervisor import Supervisor
from services.sessionizer.worker import Sessionizer

log = logging.getLogger("clickport.sessionizer")
SHUTDOWN_SECONDS = 25.0


def build_sessionizer(settings: Settings, transport: Transport, store: Store) -> Sessionizer:
    return Sessionizer(transport, store, group=settings.kafka_group,
                       batch_max_events=settings.batch_max_events,
                       batch_max_seconds=settings.batch_max_seconds,
                       idle_seconds=settings.session_idle_seconds,
                       sessions_max_in_memory=settings.sessions_max_in_memory)


def build_sessionizer_app(settings: Settings, transport: Transport, store: Store) -> Starlette:
    worker = build_sessionizer(settings, transport, store)
    supervisor = Supervisor(worker)
    damage = DamageWatch(store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(damage.check)
        task = asyncio.create_task(supervisor.run(), name="sessionizer")
        checks = asyncio.create_task(every(CHECK_SECONDS, damage.check, "store damage check"))
        try:
            yield
        finally:
            worker.stop()
            done, _ = await asyncio.wait([task], timeout=SHUTDOWN_SECONDS)
            if not done:
                log.error("sessionizer did not stop in %ss; uncommitted events will replay",
                          SHUTDOWN_SECONDS)
                task.cancel()
            await stop_tasks([checks])
            store.close()

    def problems(lag: int) -> list[Problem]:
        found = worker_problems(supervisor, lag)
        if damaged := damage.problem():
            found.append(damaged)
        return found

    async def ready() -> tuple[bool, dict[str, Any]]:
        lag = await worker.lag()
        found = problems(lag)
        return not found, {
            **problems_body(found), **worker_details(supervisor),
            "transport": transport.describe(), "lag": lag,
            "sessions_in_memory": len(worker.sessions.states),
            "store_retries": worker.stats.store_retries}

    async def metrics() -> bytes:
        lag = await worker.lag()
        return render(lambda: sessionizer_metrics(supervisor, lag), damage.metrics,
                      lambda: readiness_metrics(problems(lag),
                                                (*WORKER_PROBLEMS, STORE_DAMAGED)))

    app = Starlette(routes=health_routes(ready, metrics), lifespan=lifespan)
    app.state.sessionizer = worker
    app.state.supervisor = supervisor
    app.state.damage = damage
    return app
