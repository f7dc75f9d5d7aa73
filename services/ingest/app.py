"""The ingest HTTP surface: ``POST /api/event`` and the tracker script.

The hot path is one Starlette route with no middleware stack: read at most
``max_body_bytes``, decode, run the steps, publish, answer. Everything the steps need (the
User-Agent classifier and its cache, the GeoIP reader, the rate limiter, the parsed trusted
proxies) is built once here, when the routes are made. Errors are translated once here: bad
input 400 naming the field, oversize 413, queue or visitor salt unavailable 503; never 5xx
for bad input. CORS is open on these routes only (any site may post beacons).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import pathlib
import time
from collections import Counter
from collections.abc import Callable, Container

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.core.beacon import BeaconError, decode_beacon
from services.core.event import encode_event
from services.core.transport import Transport, TransportError
from services.ingest.geoip import open_country_lookup
from services.ingest.limits import RateLimiter, client_ip, trusted_networks
from services.ingest.salts import SaltUnavailable
from services.ingest.steps import Context, Drop, Incoming, process
from services.ingest.user_agents import UserAgents

log = logging.getLogger("clickport.ingest")
TRACKER_DIR = pathlib.Path(__file__).resolve().parents[2] / "tracker"
CORS = {"access-control-allow-origin": "*", "access-control-allow-methods": "POST, OPTIONS",
        "access-control-allow-headers": "content-type", "access-control-max-age": "86400"}
ACCEPTED = b'{"ok":true}'


class BodyTooLarge(Exception):
    pass


class IngestStats:
    def __init__(self) -> None:
        self.accepted = 0
        self.published = 0
        self.rejected: Counter[str] = Counter()  # 400/413 by field
        self.dropped: Counter[str] = Counter()  # by reason
        self.unavailable = 0


class TrackerAsset:
    """The tracker script, read and gzipped once: the minified build (``npm run size`` in
    tracker/ writes it) when present, else the readable source."""

    def __init__(self, directory: pathlib.Path = TRACKER_DIR) -> None:
        built = directory / "dist" / "clickport.min.js"
        self.path = built if built.is_file() else directory / "clickport.js"
        self.body = self.path.read_bytes()
        self.gzipped = gzip.compress(self.body, 9)
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def response(self, request: Request) -> Response:
        headers = {"cache-control": "public, max-age=300", "etag": self.etag,
                   "access-control-allow-origin": "*", "vary": "accept-encoding"}
        if request.headers.get("if-none-match") == self.etag:
            return Response(b"", 304, headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(self.gzipped, 200, {**headers, "content-encoding": "gzip"},
                            media_type="text/javascript")
        return Response(self.body, 200, headers, media_type="text/javascript")


def _json(status: int, body: dict[str, object], extra: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, {**CORS, **(extra or {})},
                    media_type="application/json")


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def ingest_routes(
    transport: Transport,
    known_sites: Container[str],
    *,
    max_body_bytes: int,
    rate_limit_per_minute: int,
    trusted_proxies: tuple[str, ...],
    bot_filter: bool,
    salts: Callable[[int], bytes],
    stats: IngestStats,
    geoip_db: pathlib.Path | None = None,
    excluded_paths: tuple[str, ...] = (),
    user_agents: UserAgents | None = None,
    now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> list[Route]:
    """The ingest routes. ``salts`` is a `services.ingest.salts.SaltBook` (refreshed by the
    composition root, never per request); ``geoip_db`` a MaxMind ``.mmdb`` path or None."""
    limiter = RateLimiter(rate_limit_per_minute)
    trusted_networks(trusted_proxies)  # parsed now, so a bad entry fails at start
    context = Context(
        known_sites, salts, limiter.allow, (user_agents or UserAgents()).classify, bot_filter,
        open_country_lookup(geoip_db) if geoip_db is not None else None, excluded_paths,
    )

    async def post_event(request: Request) -> Response:
        try:
            body = await read_limited(request, max_body_bytes)
            beacon = decode_beacon(body)
        except BodyTooLarge:
            stats.rejected["body_too_large"] += 1
            return _json(413, {"error": "body too large", "limit_bytes": max_body_bytes})
        except BeaconError as exc:
            stats.rejected[exc.field or "body"] += 1
            return _json(400, {"error": "invalid beacon", "field": exc.field,
                               "detail": str(exc)})
        peer = request.client.host if request.client else ""
        ip = client_ip(peer, request.headers.get("x-forwarded-for"), trusted_proxies)
        item = Incoming(beacon, ip, request.headers.get("user-agent", ""), now_ms())
        try:
            result = process(item, context)
        except SaltUnavailable as exc:
            return unavailable(str(exc), "visitor salt unavailable, retry later")
        if isinstance(result, Drop):
            stats.dropped[result.reason] += 1
            return _json(202, {"ok": True, "dropped": result.reason})
        try:
            await transport.publish(result.sid.encode(), encode_event(result))
        except TransportError as exc:
            return unavailable(f"publish failed: {exc}", "event queue unavailable, retry later")
        stats.accepted += 1
        stats.published += 1
        return Response(ACCEPTED, 202, CORS, media_type="application/json")

    def unavailable(cause: str, message: str) -> Response:  # cause never holds the IP
        stats.unavailable += 1
        log.warning("answering 503: %s", cause)
        return _json(503, {"error": message}, {"retry-after": "5"})

    async def preflight(request: Request) -> Response:
        return Response(b"", 204, CORS)

    asset = TrackerAsset()

    async def tracker(request: Request) -> Response:
        return asset.response(request)

    return [
        Route("/api/event", post_event, methods=["POST"]),
        Route("/api/event", preflight, methods=["OPTIONS"]),
        Route("/js/clickport.js", tracker, methods=["GET", "HEAD"]),
    ]
