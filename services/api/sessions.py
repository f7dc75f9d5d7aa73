"""Sessions and their timelines (PRODUCT.md A3).

``GET /api/sessions`` lists the sessions that started in the period, newest first, ordered
by (started_at, session_id) descending. Paging is keyset, not offset: ``next_cursor`` is an
opaque token for the last row's (started_at, session_id), and the next page continues
strictly below it, so rows written meanwhile never shift or repeat a page.

``GET /api/sessions/{session_id}/timeline`` is one session's events in order (timestamp,
then event id), each with its kind, detail and the goals it completed (each with its
is_conversion flag); 404 when the session is not in the key's site.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.api import queries
from services.api.context import ApiContext
from services.api.errors import ApiError, api_route, json_response
from services.api.goals import goal_names
from services.api.params import PERIOD_PARAMS, int_param, session_id_of
from services.api.shapes import (
    AnyEvent,
    ClickDetail,
    ClickEvent,
    CustomDetail,
    CustomEvent,
    EngagementDetail,
    EngagementEvent,
    GoalRef,
    PageviewDetail,
    PageviewEvent,
    SessionPage,
    SessionRow,
    Timeline,
    iso_ms,
)
from services.core.beacon import SESSION_ID_PATTERN

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_TIMELINE_EVENTS = 1000
# Events carry their ingest replica's receive time; a session's start is its first applied
# event's time, so an event stamped by a replica whose clock lags may sit a little before it.
CLOCK_SKEW_MS = 3_600_000
_CURSOR_TEXT = re.compile(r"^([0-9]{1,13})\.(" + SESSION_ID_PATTERN.strip("^$") + ")$")


def encode_cursor(started_ms: int, session_id: str) -> str:
    return base64.urlsafe_b64encode(f"{started_ms}.{session_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    found = _CURSOR_TEXT.match(text) if len(cursor) <= 120 else None
    if found is None:
        raise ApiError(400, "'cursor' is not a cursor from this API; use next_cursor as given",
                       "cursor")
    return int(found.group(1)), found.group(2)


def session_row(row: Mapping[str, Any], names: Mapping[str, tuple[str, bool]]) -> SessionRow:
    return SessionRow(
        session_id=row["session_id"], started_at=iso_ms(int(row["started_ms"])),
        entry_page=row["entry_page"], exit_page=row["exit_page"],
        pageviews=int(row["pageviews"]), duration=int(row["duration"]),
        country=row["country"], device=row["device"], browser=row["browser"], os=row["os"],
        source=row["source"], has_clicked=bool(row["has_clicked"]),
        has_converted=bool(row["has_converted"]), is_bounce=bool(row["is_bounce"]),
        goals=goal_refs(row["goals"], names),
    )


def goal_refs(ids: list[str], names: Mapping[str, tuple[str, bool]]) -> list[GoalRef]:
    return [GoalRef(goal_id, *names.get(goal_id, ("", True))) for goal_id in ids]


def timeline_event(row: Mapping[str, Any], names: Mapping[str, tuple[str, bool]]) -> AnyEvent:
    head = {"event_id": row["event_id"], "time": iso_ms(int(row["ts_ms"])),
            "goals": goal_refs(row["goals"], names)}
    kind = row["name"]
    if kind == "click":
        meta = dict(zip(row["meta_keys"], row["meta_values"], strict=False))
        return ClickEvent(**head, detail=ClickDetail(
            url=meta.get("click_url", ""), text=meta.get("click_text", ""),
            asin=meta.get("asin", ""), kind=meta.get("click_kind", ""),
            domain=row["click_domain"], page=row["path"]))
    if kind == "engagement":
        return EngagementEvent(**head, detail=EngagementDetail(
            path=row["path"], scroll=int(row["scroll_depth"]),
            visible_ms=int(row["visible_ms"])))
    if kind == "custom":
        props = dict(zip(row["meta_keys"], row["meta_values"], strict=False))
        return CustomEvent(**head, detail=CustomDetail(
            name=row["custom_name"], props=props, path=row["path"]))
    return PageviewEvent(**head, detail=PageviewDetail(path=row["path"], url=row["url"]))


def routes(ctx: ApiContext) -> list[Route]:
    async def list_sessions(request: Request) -> Response:
        site, query = await ctx.begin(request, (*PERIOD_PARAMS, "limit", "cursor"))
        period = ctx.period(query, site)
        limit = int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        params: dict[str, Any] = {"site": site.domain, **period.bounds(), "limit": limit + 1}
        sql = queries.SESSIONS_FIRST_PAGE
        if "cursor" in query:
            params["cursor_ms"], params["cursor_sid"] = decode_cursor(query["cursor"])
            sql = queries.SESSIONS_NEXT_PAGE
        rows = await ctx.run(sql, params)
        needed = {goal_id for r in rows for goal_id in r["goals"]}
        names = await goal_names(ctx, site.domain, needed) if needed else {}
        page = rows[:limit]
        cursor = None
        if len(rows) > limit:
            last = page[-1]
            cursor = encode_cursor(int(last["started_ms"]), last["session_id"])
        return json_response(SessionPage(site.domain, [session_row(r, names) for r in page],
                                         cursor))

    async def timeline(request: Request) -> Response:
        site, _ = await ctx.begin(request, ("site",))
        sid = session_id_of(request.path_params["session_id"])
        found = await ctx.run(queries.SESSION, {"site": site.domain, "sid": sid})
        if not found:
            raise ApiError(404, "no such session for this site", "session_id")
        session = found[0]
        rows = await ctx.run(queries.TIMELINE, {
            "site": site.domain, "sid": sid, "limit": MAX_TIMELINE_EVENTS + 1,
            "first_ms": int(session["started_ms"]) - CLOCK_SKEW_MS,
            "last_ms": int(session["last_ms"]) + CLOCK_SKEW_MS,
        })
        names = await goal_names(ctx, site.domain,
                                 {g for r in (session, *rows) for g in r["goals"]})
        events = [timeline_event(r, names) for r in rows[:MAX_TIMELINE_EVENTS]]
        return json_response(Timeline(site.domain, session_row(session, names), events,
                                      truncated=len(rows) > MAX_TIMELINE_EVENTS))

    return [
        api_route("/api/sessions", {"GET": list_sessions}),
        api_route("/api/sessions/{session_id}/timeline", {"GET": timeline}),
    ]
