"""Errors translated once at the API boundary (STYLE.md 6).

Handlers raise `ApiError(status, message)`; `endpoint` dispatches by method and turns an
`ApiError`, a wrong method, or anything unexpected into a JSON body ``{"error": "..."}``
(with ``field`` when one parameter or body field is at fault). So no answer of the query
API is ever a plain-text or HTML error page, and bad input is never a 5xx.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from services.core.repeated_log import RepeatedLog

log = logging.getLogger("clickport.api")

Handler = Callable[[Request], Awaitable[Response]]
# A route takes every method, so a wrong one reaches `endpoint` and gets a JSON 405.
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ApiError(Exception):
    """A request the API will not serve; ``status`` is the 4xx/503 to answer."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field

    def body(self) -> dict[str, str]:
        body = {"error": str(self)}
        if self.field is not None:
            body["field"] = self.field
        return body


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> Response:
    return Response(msgspec.json.encode(body), status, dict(headers or {}),
                    media_type="application/json")


def api_route(path: str, handlers: Mapping[str, Handler]) -> Route:
    return Route(path, endpoint(handlers), methods=ALL_METHODS)


def endpoint(handlers: Mapping[str, Handler]) -> Handler:
    """One path's handlers by method. HEAD is served by GET; any other method gets a JSON
    405 naming the allowed ones (Starlette's own 405 would be plain text)."""
    allowed = sorted({*handlers, *(("HEAD",) if "GET" in handlers else ())})
    # A bug in a handler fails every request that reaches it: the first with its traceback,
    # then one line per interval that counts the rest.
    unexpected = RepeatedLog(log, "unexpected error in %s", level=logging.ERROR)

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers.get(method)
        if handler is None:
            return json_response(
                {"error": f"method {request.method[:20]} not allowed; use {', '.join(allowed)}"},
                405, {"allow": ", ".join(allowed)})
        try:
            return await handler(request)
        except ApiError as exc:
            return json_response(exc.body(), exc.status)
        except ClientDisconnect:  # gone (or timed out) before its body was read: not a bug
            return json_response({"error": "client disconnected"}, 400)
        except Exception as exc:  # a bug, not bad input: log it, answer JSON, keep serving
            unexpected.report(f"{request.method} {request.url.path}: {type(exc).__name__}",
                              exc_info=exc)
            return json_response({"error": "internal error"}, 500)

    return dispatch


async def not_found(request: Request, exc: Exception) -> Response:
    """The app-level 404: JSON under ``/api/`` (a client of the API reads JSON), plain text
    elsewhere. Registered by the composition roots as the app's 404 handler."""
    if request.url.path.startswith("/api/"):
        return Response(msgspec.json.encode({"error": f"no such endpoint: {request.url.path}"}),
                        404, media_type="application/json")
    return Response("Not Found", 404, media_type="text/plain")
