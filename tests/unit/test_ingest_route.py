"""The ingest route's wiring of issue #10: 503 without a visitor salt (never a 2xx for an
event that could not get a consistent id), excluded paths, and a bad trusted proxy failing
at start. In-process ASGI, no server."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from helpers import new_sid, pageview
from starlette.applications import Starlette

from services.ingest.app import IngestStats, ingest_routes
from services.ingest.salts import SaltUnavailable
from services.ingest.user_agents import UserAgents

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
USER_AGENTS = UserAgents()


class Published:
    """A Transport stand-in that keeps what ingest publishes (only publish is used)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def publish(self, key: bytes, value: bytes) -> None:
        self.messages.append(value)


def no_salt(received_ms: int) -> bytes:
    raise SaltUnavailable("no visitor salt loaded for today")


def app(transport: Published, stats: IngestStats, **options: Any) -> Starlette:
    values: dict[str, Any] = {
        "max_body_bytes": 8192, "rate_limit_per_minute": 0, "trusted_proxies": (),
        "bot_filter": True, "salts": lambda ms: b"k" * 32, "stats": stats,
        "user_agents": USER_AGENTS}
    values.update(options)
    return Starlette(routes=ingest_routes(transport, {"example.com"},  # type: ignore[arg-type]
                                          **values))


def post(application: Starlette, beacon: dict[str, Any]) -> httpx.Response:
    async def send() -> httpx.Response:
        asgi = httpx.ASGITransport(app=application, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=asgi, base_url="http://ingest") as client:
            return await client.post("/api/event", content=orjson.dumps(beacon),
                                     headers={"user-agent": FIREFOX})

    return asyncio.run(send())


def test_no_salt_for_today_is_503_and_nothing_is_published() -> None:
    transport, stats = Published(), IngestStats()
    response = post(app(transport, stats, salts=no_salt), pageview(new_sid()))
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert transport.messages == [] and stats.unavailable == 1 and stats.accepted == 0


def test_an_excluded_path_is_dropped_with_2xx_and_counted() -> None:
    transport, stats = Published(), IngestStats()
    application = app(transport, stats, excluded_paths=("/admin",))
    response = post(application, pageview(new_sid(), url="https://example.com/admin/x"))
    assert response.json() == {"ok": True, "dropped": "excluded_path"}
    assert post(application, pageview(new_sid())).json() == {"ok": True}
    assert stats.dropped == {"excluded_path": 1} and len(transport.messages) == 1


def test_a_bad_trusted_proxy_fails_when_the_routes_are_built() -> None:
    with pytest.raises(ValueError):
        app(Published(), IngestStats(), trusted_proxies=("10.0.0.0/8", "proxy.internal"))
