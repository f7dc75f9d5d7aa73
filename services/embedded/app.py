"""`build_embedded_app`: the whole product in one Starlette app on the disk queue and the
Store the settings name: chDB in the data dir (the default) or a ClickHouse server
(``CLICKPORT_STORE=clickhouse`` + ``CLICKPORT_CLICKHOUSE_URL``).

Lifespan: open the Store and apply migrations, open the queue, load the sites, make sure the
demo site exists, start the sessionizer and the site refresher; on shutdown stop the
sessionizer (it flushes and commits), then close the queue and the Store. A queue that cannot
be opened leaves the rest running (`open_queue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Route

from services.api.app import api_routes
from services.api.errors import not_found
from services.core import sites as site_rules
from services.core.settings import BotFilter, Settings
from services.core.store import Store
from services.core.store_damage import CHECK_SECONDS, DamageWatch
from services.core.transport import TransportError
from services.embedded.admin import admin_routes
from services.embedded.demo import DEMO_DOMAIN, demo_routes
from services.embedded.health import QUEUE_REPAIR, metrics, readiness
from services.embedded.parts import Embedded
from services.embedded.runtime import Runtime, secret_file
from services.ingest.app import IngestStats, ingest_routes
from services.ingest.endpoint import BeaconFastPath, with_fast_beacon_path
from services.ingest.salts import SaltBook
from services.servers.common import (
    every,
    health_routes,
    make_disk_queue,
    make_store,
    stop_tasks,
)
from services.sessionizer.state import stored_watermark
from services.sessionizer.supervisor import Supervisor
from services.sessionizer.worker import Sessionizer

log = logging.getLogger("clickport.embedded")
SITES_REFRESH_SECONDS = 5.0


def build_embedded_app(settings: Settings, runtime: Runtime | None = None) -> BeaconFastPath:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    store = make_store(settings)
    transport = make_disk_queue(settings)
    known = site_rules.KnownSites()
    stats = IngestStats()
    sessionizer = Sessionizer(
        transport, store, group="embedded", batch_max_events=settings.batch_max_events,
        batch_max_seconds=settings.batch_max_seconds, idle_seconds=settings.session_idle_seconds,
        sessions_max_in_memory=settings.sessions_max_in_memory,
    )
    parts = Embedded(settings, store, transport, known, stats, sessionizer,
                     Supervisor(sessionizer), DamageWatch(store), runtime=runtime)
    salt = settings.visitor_salt_secret.encode() or secret_file(data_dir, "visitor-salt.secret")
    salts = SaltBook(store, pepper=salt)  # daily random salts in the Store (docs/ingest.md)
    parts.salts = salts

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        applied = await asyncio.to_thread(store.migrate)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        await asyncio.to_thread(parts.damage.check)
        await salts.refresh()
        queue_usable = await open_queue(parts)
        await asyncio.to_thread(known.reload, store)
        parts.demo_key = await asyncio.to_thread(ensure_demo_site, store, data_dir)
        known.add(DEMO_DOMAIN)
        parts.tasks = [asyncio.create_task(every(SITES_REFRESH_SECONDS,
                                                 lambda: known.reload(store), "sites")),
                       asyncio.create_task(salts.run(), name="salts"),
                       asyncio.create_task(every(CHECK_SECONDS, parts.damage.check,
                                                 "store damage check"))]
        sessionizing = [asyncio.create_task(parts.supervisor.run(), name="sessionizer")
                        ] if queue_usable else []
        if runtime is not None:
            print(banner(parts, runtime), flush=True)
        try:
            yield
        finally:
            sessionizer.stop()
            if sessionizing:
                await asyncio.wait(sessionizing, timeout=30)
            await stop_tasks(parts.tasks)
            await transport.stop()
            store.close()

    routes = [
        *ingest_routes(
            transport, known, max_body_bytes=settings.max_body_bytes,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            rate_limit_max_clients=settings.rate_limit_max_clients,
            trusted_proxies=settings.trusted_proxies,
            bot_filter=settings.bot_filter is BotFilter.ON, salts=salts, stats=stats,
            geoip_db=settings.geoip_db, excluded_paths=settings.excluded_paths,
        ),
        *api_routes(store, goals_changed=sessionizer.refresh_goals_soon),
        Route("/", lambda r: RedirectResponse("/dashboard", 302)),  # keeps a #key= fragment
        *demo_routes(),
        *health_routes(lambda: readiness(parts), lambda: metrics(parts)),
        *admin_routes(store, known, runtime, transport.dead_letters(),
                      sessionizer.recount_dead_letters),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found})
    app.state.embedded = parts
    return with_fast_beacon_path(app)


async def open_queue(parts: Embedded) -> bool:
    """Open the disk queue; False when it is unusable (a damaged file, say). The app then
    starts without it: the API and the dashboard serve what the Store holds, ingest answers
    503 ``queue_unusable``, ``/readyz`` names it, and nothing is sessionized, until an operator
    repairs the file (``clickport queue check|repair``, docs/operations.md)."""
    transport = parts.transport
    try:
        await transport.start()
        await asyncio.to_thread(check_queue_head, parts)
    except TransportError as exc:
        # Without its head checked the queue could hand out offsets stored sessions have
        # applied (see check_queue_head): not used either.
        transport.mark_unusable(str(exc))
        log.error("the embedded queue %s is unusable: %s. The API and the dashboard serve the "
                  "stored data; ingest answers 503 and nothing is sessionized until it is "
                  "repaired: %s", transport.path, transport.unusable, QUEUE_REPAIR)
        return False
    return True


def check_queue_head(parts: Embedded) -> None:
    """A queue that lost its last writes (a removed ``-wal``, an older copy of the data dir)
    would give new events offsets that stored sessions have already applied, and the
    sessionizer would skip them as replays. Found by comparing the queue's head with the
    Store's watermark; new events then go on a new stream (docs/delivery.md)."""
    transport = parts.transport
    applied = stored_watermark(parts.store, transport.stream)
    if applied < transport.head:
        return
    old = transport.stream
    new = transport.new_stream()
    parts.queue_streams_started += 1
    log.error("the embedded queue %s lost writes: its next offset is %d but stored sessions "
              "have applied offsets up to %d of its stream %d. Events it accepted after "
              "offset %d and had not stored are lost; new events go on stream %d so that "
              "none is taken for a replay (docs/delivery.md)", transport.path, transport.head,
              applied, old, transport.head - 1, new)


def ensure_demo_site(store: Store, data_dir: pathlib.Path) -> str:
    """The demo site exists with a key; the key is kept in the data dir to print each start."""
    key_file = data_dir / "demo-key.txt"
    if site_rules.get_site(store, DEMO_DOMAIN) is not None and key_file.exists():
        return key_file.read_text().strip()
    _, key = site_rules.add_site(store, DEMO_DOMAIN)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def banner(parts: Embedded, runtime: Runtime) -> str:
    base = f"http://{runtime.host}:{runtime.port}"
    return (
        f"\nClickport is running (data in {parts.settings.data_dir.resolve()})\n"
        f"  demo page:  {base}/demo   (site {DEMO_DOMAIN})\n"
        f"  dashboard:  {base}/dashboard#key={parts.demo_key}\n"
        f"  tracker:    {base}/js/clickport.js\n"
        f"  API key:    {parts.demo_key}\n"
        f"  try:        curl -H 'x-api-key: {parts.demo_key}' "
        f"'{base}/api/outbound-links?period=today'\n"
    )
