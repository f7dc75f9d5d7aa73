"""``POST /api/event`` as a bare ASGI app, and the dispatcher that puts it in front of
Starlette so the hot path skips the router and the middleware stack.

Errors are translated once here: bad input 400 naming the field, oversize 413, queue or
visitor salt unavailable 503 (with Retry-After); a deliberate drop is still 202. Nothing here
logs or returns the client IP.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from services.core.beacon import BeaconError, decode_beacon
from services.core.event import encode_event
from services.core.repeated_log import RepeatedLog
from services.core.transport import Transport, TransportError
from services.ingest.limits import RateLimiter, forwarded_client
from services.ingest.salts import SaltUnavailable
from services.ingest.steps import Context, Drop, Incoming, process

log = logging.getLogger("clickport.ingest")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The full set answers a preflight (OPTIONS). A text/plain POST is a CORS "simple request":
# the browser reads only allow-origin from its answer, and every header costs on the hot path.
CORS = {"access-control-allow-origin": "*", "access-control-allow-methods": "POST, OPTIONS",
        "access-control-allow-headers": "content-type", "access-control-max-age": "86400"}
_JSON_CORS = [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"*")]
ACCEPTED = b'{"ok":true}'
Headers = list[tuple[bytes, bytes]]


def _headers(body: bytes, *extra: tuple[bytes, bytes]) -> Headers:
    return [*_JSON_CORS, *extra, (b"content-length", str(len(body)).encode())]


_ACCEPTED_HEADERS = _headers(ACCEPTED)  # built once: most answers are this one


class ClientGone(Exception):
    """The client disconnected before its request was complete."""


class IngestStats:
    def __init__(self) -> None:
        self.accepted = 0
        self.published = 0
        self.rejected: Counter[str] = Counter()  # 400/413 by field
        self.dropped: Counter[str] = Counter()  # by reason
        self.unavailable = 0
        self.forwarded_for_invalid = 0  # a trusted proxy's hop that is not an IP: the peer's
        self.rate_limiter: RateLimiter | None = None  # set by ingest_routes, for its metrics


class BeaconEndpoint:
    def __init__(self, transport: Transport, context: Context, stats: IngestStats,
                 max_body_bytes: int, trusted_proxies: tuple[str, ...],
                 now_ms: Callable[[], int]) -> None:
        self.transport = transport
        self.context = context
        self.stats = stats
        self.max_body_bytes = max_body_bytes
        self.trusted_proxies = trusted_proxies
        self.now_ms = now_ms
        # One line per cause and interval, not one per 503 (a full disk answers every beacon
        # with one); on ingest's clock, so a test's clock drives it too.
        self._unavailable_log = RepeatedLog(log, "answering 503: %s",
                                            clock=lambda: self.now_ms() / 1000)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body, headers = await self.handle(scope, receive)
        except ClientGone:
            return  # nobody to answer, and a body the client did not finish is not an event
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes, Headers]:
        user_agent, forwarded_for, declared = "", None, -1
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
            elif name == b"content-length" and value.isdigit():
                declared = int(value)
        body = None if declared > self.max_body_bytes else await self._read(receive)
        if body is None:
            self.stats.rejected["body_too_large"] += 1
            return self._json(413, {"error": "body too large",
                                    "limit_bytes": self.max_body_bytes})
        try:
            beacon = decode_beacon(body)
        except BeaconError as exc:
            self.stats.rejected[exc.field or "body"] += 1
            return self._json(400, {"error": "invalid beacon", "field": exc.field,
                                    "detail": str(exc)})
        client = scope.get("client")
        peer = client[0] if client else ""
        ip, invalid_hop = forwarded_client(peer, forwarded_for, self.trusted_proxies)
        if invalid_hop:
            self.stats.forwarded_for_invalid += 1
        try:
            result = process(Incoming(beacon, ip, user_agent, self.now_ms()), self.context)
        except SaltUnavailable as exc:
            return self._unavailable(str(exc), "visitor salt unavailable, retry later")
        if isinstance(result, Drop):
            self.stats.dropped[result.reason] += 1
            return self._json(202, {"ok": True, "dropped": result.reason})
        try:
            await self.transport.publish(result.sid.encode(), encode_event(result))
        except TransportError as exc:
            return self._unavailable(f"publish failed: {exc}",
                                     "event queue unavailable, retry later", exc.reason)
        self.stats.accepted += 1
        self.stats.published += 1
        return 202, ACCEPTED, _ACCEPTED_HEADERS

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (chunked bodies too);
        raises `ClientGone` when the client disconnects before the body is complete."""
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone
            chunk: bytes = message.get("body", b"")
            body += chunk
            if len(body) > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                return body

    def _json(self, status: int, payload: dict[str, object]) -> tuple[int, bytes, Headers]:
        body = orjson.dumps(payload)
        return status, body, _headers(body)

    def _unavailable(self, cause: str, message: str, reason: str = ""
                     ) -> tuple[int, bytes, Headers]:
        self.stats.unavailable += 1
        self._unavailable_log.report(cause)  # cause never holds the IP
        body = orjson.dumps({"error": message, "reason": reason} if reason else {"error": message})
        return 503, body, _headers(body, (b"retry-after", b"5"))


class BeaconFastPath:
    """Sends ``POST /api/event`` straight to the `BeaconEndpoint` and everything else to the
    app; attribute access (``.state``, ``.routes``) reaches the app."""

    def __init__(self, app: Any, endpoint: BeaconEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"] == "/api/event"
                and scope["method"] == "POST"):
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def with_fast_beacon_path(app: Any) -> BeaconFastPath:
    """Wrap a Starlette app whose routes include the ingest routes."""
    for route in app.routes:
        if isinstance(getattr(route, "endpoint", None), BeaconEndpoint):
            return BeaconFastPath(app, route.endpoint)
    raise ValueError("the app has no ingest routes to speed up")
