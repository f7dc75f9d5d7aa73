"""The OpenAPI 3.1 document served at ``GET /api/openapi.json`` (PRODUCT.md A7).

Paths and parameters are written here; every body schema is generated from the structs in
`services.api.shapes`, the same ones the handlers encode, so the two cannot drift apart.
The document is built once, on first request, and needs no key.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.api import shapes
from services.api.errors import api_route, json_response
from services.api.periods import MAX_RANGE_DAYS, PERIODS
from services.api.sessions import DEFAULT_LIMIT, MAX_LIMIT

_STRUCTS = (shapes.Error, shapes.OutboundDomains, shapes.OutboundUrls, shapes.SessionPage,
            shapes.Timeline, shapes.KpiReport, shapes.GoalInput, shapes.Goal, shapes.GoalList,
            shapes.Deleted)
_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _param(name: str, where: str, description: str, schema: dict[str, Any],
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "description": description, "schema": schema}


_SITE = _param("site", "query", "The key's site (optional; another site is 403).",
               {"type": "string"})
_PERIOD = [
    _SITE,
    _param("period", "query", "Reporting period in the site's time zone (default 30d).",
           {"type": "string", "enum": list(PERIODS), "default": "30d"}),
    _param("from", "query", f"First day (YYYY-MM-DD), with 'to'; at most {MAX_RANGE_DAYS} "
           "days.", {"type": "string", "format": "date"}),
    _param("to", "query", "Day after the last (exclusive), with 'from'.",
           {"type": "string", "format": "date"}),
]
_SESSION_ID = _param("session_id", "path", "A session id (16-64 of A-Z a-z 0-9 _ -).",
                     {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"})
_GOAL_ID = _param("goal_id", "path", "A goal id as returned by POST /api/goals.",
                  {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"})
_ERRORS = {
    "400": "A bad parameter or body; 'field' names it.",
    "401": "Missing, unknown or revoked x-api-key.",
    "403": "The key does not give access to that site.",
    "503": "Storage unavailable; retry later.",
}


def _operation(summary: str, parameters: list[dict[str, Any]], ok: str, ok_schema: Any,
               extra_errors: dict[str, str] | None = None, body: str | None = None,
               ) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": "OK", "content": {
        "application/json": {"schema": ok_schema}}}}
    for code, text in sorted({**_ERRORS, **(extra_errors or {})}.items()):
        responses[code] = {"description": text,
                           "content": {"application/json": {"schema": _ref("Error")}}}
    operation: dict[str, Any] = {"summary": summary, "parameters": parameters,
                                 "security": [{"apiKey": []}], "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(body)}}}
    return operation


@functools.cache
def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(_STRUCTS, ref_template=_REF)
    not_found = {"404": "No such session or goal for this site."}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Clickport query API", "version": "1",
                 "description": "Read a site's analytics and manage its goals. Every "
                                "endpoint needs the site's key in x-api-key."},
        "components": {"schemas": components, "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
        "paths": {
            "/api/outbound-links": {"get": _operation(
                "Destination domains by unique clicks, or one domain's URLs", [
                    *_PERIOD,
                    _param("domain", "query", "Drill into this destination domain's URLs.",
                           {"type": "string", "maxLength": 253}),
                ], "200", {"anyOf": [_ref("OutboundDomains"), _ref("OutboundUrls")]})},
            "/api/sessions": {"get": _operation("Sessions, newest first, cursor paging", [
                *_PERIOD,
                _param("limit", "query", "Rows per page.", {
                    "type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT}),
                _param("cursor", "query", "next_cursor from the previous page.",
                       {"type": "string"}),
            ], "200", _ref("SessionPage"))},
            "/api/sessions/{session_id}/timeline": {"get": _operation(
                "One session's events in order", [_SITE, _SESSION_ID], "200",
                _ref("Timeline"), not_found)},
            "/api/kpis": {"get": _operation(
                "KPIs for the period and the previous equal period", _PERIOD, "200",
                _ref("KpiReport"))},
            "/api/goals": {
                "get": _operation("The site's goals", [_SITE], "200", _ref("GoalList")),
                "post": _operation("Create a goal", [_SITE], "201", _ref("Goal"), {
                    "409": "The site has the most goals it may have.",
                    "413": "The body is too large."}, body="GoalInput"),
            },
            "/api/goals/{goal_id}": {
                "put": _operation("Replace a goal", [_SITE, _GOAL_ID], "200", _ref("Goal"),
                                  {**not_found, "413": "The body is too large."},
                                  body="GoalInput"),
                "delete": _operation("Delete a goal", [_SITE, _GOAL_ID], "200",
                                     _ref("Deleted"), not_found),
            },
        },
    }


def routes() -> list[Route]:
    async def openapi(request: Request) -> Response:
        return json_response(document())

    return [api_route("/api/openapi.json", {"GET": openapi})]
