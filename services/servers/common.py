"""Pieces every service process shares: choosing the Transport and Store from settings,
the health/readiness/metrics routes, and a periodic background refresh."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.core.metrics import CONTENT_TYPE
from services.core.settings import QueueSync, Settings, StoreKind, TransportKind
from services.core.store import Store
from services.core.transport import Transport

if TYPE_CHECKING:
    from services.adapters.disk_queue import DiskQueueTransport

log = logging.getLogger("clickport.servers")

Readiness = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


class ConfigurationError(RuntimeError):
    """The settings ask for a combination that cannot run (said at start, with the fix)."""


def make_store(settings: Settings) -> Store:
    if settings.store is StoreKind.CLICKHOUSE:
        from services.adapters.clickhouse_store import ClickHouseStore

        return ClickHouseStore(settings.clickhouse_url)
    from services.adapters.chdb_store import ChdbStore

    return ChdbStore(settings.data_dir / "chdb")


def make_disk_queue(settings: Settings) -> DiskQueueTransport:
    """The embedded queue in the data dir (the one-process `clickport dev`)."""
    from services.adapters.disk_queue import DiskQueueTransport

    return DiskQueueTransport(settings.data_dir / "queue.sqlite3", settings.queue_max_pending,
                              full_sync=settings.queue_sync is QueueSync.FULL)


def make_transport(settings: Settings) -> Transport:
    if settings.transport is not TransportKind.KAFKA:
        raise ConfigurationError(
            "separate services talk through Kafka: set CLICKPORT_TRANSPORT=kafka "
            "(the embedded queue belongs to the one-process `clickport dev`)")
    from services.adapters.kafka_transport import KafkaTransport

    return KafkaTransport(settings.kafka_bootstrap, settings.kafka_topic)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def health_routes(ready: Readiness, metrics: Callable[[], Awaitable[bytes]]) -> list[Route]:
    """``/healthz`` (the process is alive), ``/readyz`` (it can do its work) and ``/metrics``."""

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok, detail = await ready()
        return json_response({"ready": ok, **detail}, 200 if ok else 503)

    async def prometheus(request: Request) -> Response:
        return Response(await metrics(), 200, media_type=CONTENT_TYPE)

    return [Route("/healthz", healthz), Route("/readyz", readyz),
            Route("/metrics", prometheus)]


async def every(seconds: float, work: Callable[[], Any], name: str) -> None:
    """Run blocking ``work`` in a thread every ``seconds``, forever; a failure is logged and
    the next round tries again (callers keep serving what they loaded last)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(work)
        except Exception:  # the loop must survive any one failed refresh
            log.exception("periodic %s failed", name)


async def stop_tasks(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
