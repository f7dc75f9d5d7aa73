"""The dashboard (PRODUCT.md D1): one HTML page and its static assets, served by the API
service so the product needs nothing else to be read.

The page is a plain client of the public query API: its ES modules call ``/api/...`` with the
``x-api-key`` header like any other client, and the server side knows nothing about them
beyond serving the files. Guarantees:

- Every file is read once, when the routes are built, from ``services/api/dashboard/``;
  only those files are served (a fixed name -> body table, so no path ever reaches the file
  system from a request). No build step, no CDN: the page loads nothing from elsewhere.
- Every answer carries a strict Content-Security-Policy (``default-src 'self'``, no inline
  script or style, no framing), ``nosniff`` and ``no-referrer``. Visitor text (link texts,
  URLs, goal names) is only ever inserted as text by the scripts; the policy is the second
  line of defence should one of them ever get that wrong.
- Assets are revalidated on every load (``no-cache`` + ETag), so an upgrade is seen at once.
"""

from __future__ import annotations

import hashlib
import pathlib
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

ASSETS_DIR = pathlib.Path(__file__).parent / "dashboard"
PAGE_PATH = "/dashboard"
ASSETS_PATH = "/dashboard/assets"
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str

    def response(self, request: Request) -> Response:
        headers = {**SECURITY_HEADERS, "etag": self.etag}
        if request.headers.get("if-none-match") == self.etag:
            return Response(b"", 304, headers)
        body = b"" if request.method == "HEAD" else self.body
        headers["content-length"] = str(len(self.body))
        return Response(body, 200, headers, media_type=self.media_type)


def load_assets(directory: pathlib.Path = ASSETS_DIR) -> dict[str, Asset]:
    """File name -> asset, for every file of a known type in the directory (not below)."""
    assets: dict[str, Asset] = {}
    for path in sorted(directory.iterdir()):
        media_type = MEDIA_TYPES.get(path.suffix)
        if media_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        assets[path.name] = Asset(body, media_type, etag)
    return assets


def routes(directory: pathlib.Path = ASSETS_DIR) -> list[Route]:
    assets = load_assets(directory)
    page = assets.pop("index.html")
    not_found = Response(b"not found", 404, SECURITY_HEADERS, media_type="text/plain")

    async def dashboard(request: Request) -> Response:
        return page.response(request)

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        return found.response(request) if found is not None else not_found

    async def slash(request: Request) -> Response:
        return RedirectResponse(PAGE_PATH, 308)

    return [
        Route(PAGE_PATH, dashboard, methods=["GET", "HEAD"]),
        Route(PAGE_PATH + "/", slash, methods=["GET", "HEAD"]),
        Route(ASSETS_PATH + "/{name}", asset, methods=["GET", "HEAD"]),
    ]
