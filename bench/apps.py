"""ASGI apps only the benchmarks serve (under ``uvicorn --factory``):

- `bare_app`: the limit of the HTTP stack: read the whole body, answer 204. No framework.
- `ingest_memory_app`: ingest alone on the embedded disk queue (no sessionizer in the
  process, unlike ``clickport dev``): ``clickport ingest``'s composition root with the disk
  queue as Transport; sites and visitor salts from a chDB store in ``BENCH_DATA_DIR``.
- `api_app`: the query API as ``clickport api`` builds it, plus an engine probe; on chDB in
  ``BENCH_DATA_DIR``, or on the ClickHouse server at ``BENCH_CLICKHOUSE_URL``.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def bare_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def ingest_memory_app() -> Any:
    """``clickport ingest``'s composition root (`build_ingest_app`: the fast beacon path in
    front of Starlette, sites and salts from the Store) with the embedded disk queue as its
    Transport instead of Kafka, and no sessionizer in the process."""
    from services.adapters.chdb_store import ChdbStore
    from services.core.settings import Settings
    from services.servers.common import make_disk_queue
    from services.servers.ingest_server import build_ingest_app

    data_dir = pathlib.Path(os.environ["BENCH_DATA_DIR"])
    settings = Settings.from_env(data_dir=data_dir)
    transport = make_disk_queue(settings)
    return build_ingest_app(settings, transport, ChdbStore(data_dir / "chdb"))


def api_app() -> Starlette:
    """The query API exactly as ``clickport api`` builds it (`build_api_app` on a chDB store in
    ``BENCH_DATA_DIR``, or a `ClickHouseStore` on ``BENCH_CLICKHOUSE_URL`` when set), plus
    ``GET /bench/engine?endpoint=...``: the same SQL an endpoint runs, called on the Store
    directly, answering the milliseconds it took in-process: the engine's share of the
    endpoint's latency, measured interleaved with it."""
    import time

    from services.adapters.chdb_store import ChdbStore
    from services.adapters.clickhouse_store import ClickHouseStore
    from services.api import queries
    from services.api.day_sums import DaySums
    from services.api.outbound import with_examples
    from services.api.outbound_days import OutboundDays
    from services.api.periods import resolve_period
    from services.core.store import Store
    from services.servers.api_server import build_api_app

    url = os.environ.get("BENCH_CLICKHOUSE_URL", "")
    store: Store = (ClickHouseStore(url) if url
                    else ChdbStore(pathlib.Path(os.environ["BENCH_DATA_DIR"]) / "chdb"))
    app = build_api_app(store)

    async def run(sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return store.query(sql, params)

    day_sums = DaySums(run)  # kept days, as the endpoints keep them
    outbound_days = OutboundDays(run)

    def engine(endpoint: str, site: str, sid: str) -> float:
        import datetime as dt

        now = dt.datetime.now(dt.UTC)
        period = resolve_period("30d", None, None, "UTC", now)
        started = time.perf_counter()
        if endpoint == "outbound":
            counted = asyncio.run(outbound_days.top_domains(site, period.start, period.end, now))
            asyncio.run(with_examples(run, counted, {"site": site, **period.bounds()}))
        elif endpoint == "kpis":
            previous = period.previous()
            asyncio.run(day_sums.periods(
                site, [(period.start, period.end), (previous.start, previous.end)], now))
        else:
            found = store.query(queries.SESSION, {"site": site, "sid": sid})[0]
            store.query(queries.TIMELINE, {
                "site": site, "sid": sid, "limit": 1001,
                "first_ms": int(found["started_ms"]) - 3_600_000,
                "last_ms": int(found["last_ms"]) + 3_600_000})
        return (time.perf_counter() - started) * 1000

    async def bench_engine(request: Request) -> Response:
        q = request.query_params
        ms = await asyncio.to_thread(engine, q["endpoint"], q["site"], q.get("sid", ""))
        return Response(orjson.dumps({"ms": ms}), media_type="application/json")

    app.router.routes.append(Route("/bench/engine", bench_engine))
    return app
