"""Helpers for the browser tests (tests/e2e/test_tracker_browser.py): the real embedded app
under a real uvicorn server in a thread, a second loopback HTTP server for the test pages and
for every "external" host the pages link to, Chromium's launch arguments, and reads of the
events table.

Host names: Chromium runs with ``--host-resolver-rules`` that send every host name to
127.0.0.1, and port 80 (where plain ``http://www.partner.example/x`` links go) to the page
server. So the pages live at ``http://shop.test:PAGE_PORT/...`` and an outbound link's target
really loads, all on loopback. Hosts on Chromium's HSTS preload list (www.stripe.com,
www.amazon.com) are always upgraded to https, port 443, where nothing listens: such a
navigation fails, which is fine, since the beacon is sent at click time.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import pathlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from helpers import require_or_skip

from services.cli import UVICORN_OPTIONS
from services.core.settings import BotFilter, Settings
from services.embedded.app import build_embedded_app

CHROMIUM = "/usr/bin/chromium"


def sync_playwright_or_skip() -> Any:
    """Playwright's sync API for Debian's Chromium, or a skip that says how to get it (a
    failure under CLICKPORT_REQUIRE_BROWSER=1)."""
    if not os.path.exists(CHROMIUM):
        require_or_skip("CLICKPORT_REQUIRE_BROWSER",
                        f"Debian's Chromium is not installed at {CHROMIUM} "
                        "(apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip("CLICKPORT_REQUIRE_BROWSER",
                        "the playwright package is missing (pip install -e '.[test]'; "
                        "no `playwright install`: the tests use Debian's Chromium)")
    return sync_playwright
PAGES = pathlib.Path(__file__).parent / "pages"
SITE = "demo.localhost"  # the embedded app's demo site: the pages' data-domain
PAGE_HOST = "shop.test"

Row = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_args(page_port: int) -> list[str]:
    rules = ", ".join([
        # Chromium's own update and time checks go nowhere instead of to the page server.
        "MAP *.googleapis.com ~NOTFOUND",
        "MAP *.google.com ~NOTFOUND",
        f"MAP *:80 127.0.0.1:{page_port}",
        "MAP * 127.0.0.1",
    ])
    return [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--disable-component-update",
        # http links stay http (an https upgrade would go to port 443, where nothing listens).
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        f"--host-resolver-rules={rules}",
    ]


# ---- The ingest service ---------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    content_type: str
    origin: str


class RecordRequests:
    """ASGI wrapper: notes each HTTP request (to prove no CORS preflight was ever sent)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[Seen] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.seen.append(Seen(scope["method"], scope["path"],
                                  headers.get("content-type", ""), headers.get("origin", "")))
        await self.app(scope, receive, send)


@dataclass
class Ingest:
    app: Any
    recorder: RecordRequests
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store(self) -> Any:
        return self.app.state.embedded.store


@contextlib.contextmanager
def run_ingest(data_dir: pathlib.Path) -> Iterator[Ingest]:
    """The embedded app (ingest, disk queue, sessionizer, chDB) on a real uvicorn server."""
    settings = Settings.from_env({}, data_dir=data_dir, rate_limit_per_minute=0,
                                 bot_filter=BotFilter.OFF, batch_max_seconds=0.1)
    app = build_embedded_app(settings)
    recorder = RecordRequests(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(recorder, host="127.0.0.1", port=port,
                                           lifespan="on", **UVICORN_OPTIONS))
    thread = threading.Thread(target=server.run, name="clickport-ingest", daemon=True)
    thread.start()
    deadline = time.monotonic() + 90  # chDB start and migrations on a busy 2-core machine
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the ingest server stopped during start-up (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("the ingest server did not start within 90 s")
        time.sleep(0.05)
    try:
        yield Ingest(app, recorder, port, server, thread)
    finally:
        server.should_exit = True
        thread.join(60)


# ---- The page server --------------------------------------------------------------------------


class PageHandler(http.server.BaseHTTPRequestHandler):
    """``shop.test`` (and ``www.shop.test``) serve pages/NAME.html at ``/NAME``, with the ingest
    origin filled in; ``/go/...`` on the shop redirects like an affiliate link; every other
    host and path is a plain landing page without the tracker."""

    server: PageServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        host = (self.headers.get("host") or "").split(":")[0].lower()
        path = urlsplit(self.path).path
        self.server.seen.append(f"{host}{self.path}")
        if host.removeprefix("www.") == PAGE_HOST:
            if path.startswith("/go/"):
                query = urlsplit(self.path).query
                return self.reply(302, b"", {"location": "http://www.partner.example/deal?"
                                             + query})
            page = PAGES / (path.strip("/") + ".html")
            if path.strip("/").isidentifier() and page.is_file():
                html = (page.read_text().replace("__INGEST__", self.server.ingest_origin)
                        .replace("__PAGE_PORT__", str(self.server.server_address[1])))
                return self.reply(200, html.encode())
        if path == "/favicon.ico":
            return self.reply(404, b"")
        body = f"<!doctype html><title>landed</title><p>{host}{path}</p>".encode()
        self.reply(200, body)

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


class PageServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ingest_origin: str) -> None:
        super().__init__(("127.0.0.1", 0), PageHandler)
        self.ingest_origin = ingest_origin
        self.seen: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = PAGE_HOST) -> str:
        return f"http://{host}:{self.port}{path}"


@contextlib.contextmanager
def run_pages(ingest_origin: str) -> Iterator[PageServer]:
    server = PageServer(ingest_origin)
    thread = threading.Thread(target=server.serve_forever, name="test-pages", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# ---- What landed in the store -----------------------------------------------------------------

EVENTS_SQL = """
SELECT name, url, path, referrer, click_domain, scroll_depth, visible_ms,
       meta_values[indexOf(meta_keys, 'click_url')] AS click_url,
       meta_values[indexOf(meta_keys, 'click_text')] AS click_text,
       meta_values[indexOf(meta_keys, 'asin')] AS asin,
       meta_values[indexOf(meta_keys, 'click_kind')] AS click_kind,
       toUnixTimestamp64Milli(timestamp) AS ts
FROM events FINAL
WHERE site_id = {site:String} AND session_id = {sid:String}
ORDER BY timestamp, event_id
"""


@dataclass
class Landed:
    rows: list[Row] = field(default_factory=list)

    def named(self, name: str) -> list[Row]:
        return [r for r in self.rows if r["name"] == name]

    def clicks(self) -> list[tuple[str, str, str, str, str]]:
        """(click_url, click_text, asin, click_kind, click_domain) of every click, in order."""
        return [(r["click_url"], r["click_text"], r["asin"], r["click_kind"], r["click_domain"])
                for r in self.named("click")]

    def summary(self) -> list[str]:
        """One short line per event, for assertion messages."""
        return [f"{r['name']} {r['path']} sd={r['scroll_depth']} vt={r['visible_ms']} "
                f"{r['click_url']} {r['click_kind']}".rstrip() for r in self.rows]

    def pageview_paths(self) -> list[str]:
        return [r["path"] for r in self.named("pageview")]


def session_events(store: Any, sid: str) -> Landed:
    return Landed(store.query(EVENTS_SQL, {"site": SITE, "sid": sid}))


def wait_for_events(store: Any, sid: str, done: Callable[[Landed], bool],
                    timeout: float = 20.0, settle: float = 0.6) -> Landed:
    """Poll until ``done`` holds (or the time is up), then wait ``settle`` seconds more and read
    again, so an extra event sent with the expected ones (a duplicate click) shows up too."""
    deadline = time.monotonic() + timeout
    landed = session_events(store, sid)
    while not done(landed) and time.monotonic() < deadline:
        time.sleep(0.1)
        landed = session_events(store, sid)
    if done(landed) and settle:
        time.sleep(settle)
        landed = session_events(store, sid)
    return landed
