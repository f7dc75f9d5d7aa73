"""The demo shop page, a stand-in for a customer's site: its links, the /go/ affiliate
redirects and a /gopher page (a path that only looks like a redirect). `clickport dev`
serves it next to everything else; `scripts/stack` serves it as a site of its own, on its
own port, whose tracker script comes from an ingest process (as on a real site)."""

from __future__ import annotations

import pathlib

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

DEMO_DOMAIN = "demo.localhost"
DEMO_PAGE = (pathlib.Path(__file__).parent / "demo.html").read_text()


def demo_page(tracker: str = "/js/clickport.js", dashboard: str = "/dashboard") -> str:
    """The page with its tracker script and dashboard link at the given URLs."""
    return (DEMO_PAGE.replace("__DOMAIN__", DEMO_DOMAIN).replace("__TRACKER__", tracker)
            .replace("__DASHBOARD__", dashboard))


def demo_routes(tracker: str = "/js/clickport.js", dashboard: str = "/dashboard"
                ) -> list[Route]:
    page = demo_page(tracker, dashboard)
    return [
        Route("/demo", lambda r: HTMLResponse(page)),
        Route("/go/{slug:path}", go_redirect),
        Route("/gopher", lambda r: HTMLResponse("<p>Gophers live here. <a href='/demo'>Back</a>")),
    ]


async def go_redirect(request: Request) -> Response:
    """The demo site's own affiliate redirect: /go/<slug> -> an external shop."""
    asin = request.query_params.get("asin", "")
    target = f"https://www.amazon.com/dp/{asin}" if asin else "https://example.com/deal"
    return RedirectResponse(target, 302)
