"""The ingest HTTP surface: ``POST /api/event`` and the tracker script.

The hot path, ``POST /api/event``, is a bare ASGI app (`services.ingest.endpoint`) that
`with_fast_beacon_path` puts in front of Starlette's router and middleware: read at most
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
from collections.abc import Callable, Container

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.core.transport import Transport
from services.ingest.endpoint import CORS, BeaconEndpoint
from services.ingest.endpoint import IngestStats as IngestStats  # re-exported
from services.ingest.geoip import open_country_lookup
from services.ingest.limits import DEFAULT_MAX_CLIENTS, RateLimiter, trusted_networks
from services.ingest.steps import Context
from services.ingest.user_agents import UserAgents

log = logging.getLogger("clickport.ingest")
TRACKER_DIR = pathlib.Path(__file__).resolve().parents[2] / "tracker"


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


def ingest_routes(
    transport: Transport,
    known_sites: Container[str],
    *,
    max_body_bytes: int,
    rate_limit_per_minute: int,
    rate_limit_max_clients: int = DEFAULT_MAX_CLIENTS,
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
    limiter = stats.rate_limiter = RateLimiter(rate_limit_per_minute, rate_limit_max_clients)
    trusted_networks(trusted_proxies)  # parsed now, so a bad entry fails at start
    context = Context(
        known_sites, salts, limiter.allow, (user_agents or UserAgents()).classify, bot_filter,
        open_country_lookup(geoip_db) if geoip_db is not None else None, excluded_paths,
    )

    endpoint = BeaconEndpoint(transport, context, stats, max_body_bytes, trusted_proxies, now_ms)

    async def preflight(request: Request) -> Response:
        return Response(b"", 204, CORS)

    asset = TrackerAsset()

    async def tracker(request: Request) -> Response:
        return asset.response(request)

    return [
        Route("/api/event", endpoint, methods=["POST"]),
        Route("/api/event", preflight, methods=["OPTIONS"]),
        Route("/js/clickport.js", tracker, methods=["GET", "HEAD"]),
    ]
