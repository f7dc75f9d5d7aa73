"""Goals CRUD (PRODUCT.md A5, A8, G1-G5) on the versioned ``goals`` table.

A goal is ``{name, type, conditions: [{field, operator, value}], logic, is_conversion}``,
decoded strictly from the body (unknown fields are errors), then checked: each condition's
field must fit the goal's type (`services.core.goals.FIELDS_BY_TYPE`), a comparing operator
needs a value, and no text holds control characters. Every 400 names the field at fault.

Writes never update in place: create, update and delete each insert a row with a newer
``version`` (delete sets ``deleted = 1`` and keeps the name, so past conversions still show
it). The rows stay readable by `services.core.goals.goal_from_row`, which is how every
sessionizer loads them (within 5 s; at once when ``goals_changed`` is wired to it), and a goal
applies to events processed after that.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.api import queries
from services.api.context import ApiContext
from services.api.errors import ApiError, api_route, json_response
from services.api.params import goal_id_of, has_control_chars
from services.api.shapes import Condition, Deleted, Goal, GoalInput, GoalList, iso_ms
from services.core import goals as goal_rules

MAX_BODY_BYTES = 16 * 1024
GOAL_NAMES_SECONDS = 5.0  # as the sessionizer's goal refresh (G5)
MAX_GOALS_PER_SITE = 100
VALUELESS_OPERATORS = frozenset({"is_empty", "is_not_empty"})
_decoder = msgspec.json.Decoder(GoalInput)
_AT_PATH = re.compile(r"at `\$\.?([^`]*)`")
_NAMED_FIELD = re.compile(r"field `([^`]*)`")
_conditions_encoder = msgspec.json.Encoder()


async def goal_names(ctx: ApiContext, site: str, needed: Iterable[str] = ()
                     ) -> dict[str, tuple[str, bool]]:
    """Goal id -> (name, is_conversion) for the site, deleted goals included. Kept for
    `GOAL_NAMES_SECONDS`, read again at once when an id in ``needed`` is missing (a goal
    another API replica created) and dropped on this process's own goal writes, so only a
    rename made through another replica can show late, by at most that long."""
    kept = ctx.goal_names.get(site)
    if (kept is not None and time.monotonic() - kept[0] < GOAL_NAMES_SECONDS
            and all(goal_id in kept[1] for goal_id in needed)):
        return kept[1]
    rows = await ctx.run(queries.GOAL_NAMES, {"site": site})
    names = {r["goal_id"]: (r["name"], bool(r["is_conversion"])) for r in rows}
    ctx.goal_names[site] = (time.monotonic(), names)
    return names


def decode_goal(body: bytes) -> GoalInput:
    """The goal in a request body, checked, or `ApiError` 400 naming the field."""
    try:
        goal = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"invalid goal: {exc}", _field_of(str(exc))) from None
    except (msgspec.DecodeError, UnicodeDecodeError):  # invalid UTF-8 in a string
        raise ApiError(400, "the body must be a JSON object (a goal)") from None
    name = goal.name.strip()
    if not name:
        raise ApiError(400, "invalid goal: 'name' must not be blank", "name")
    if has_control_chars(goal.name):
        raise ApiError(400, "invalid goal: 'name' must not contain control characters", "name")
    fields = goal_rules.FIELDS_BY_TYPE[goal.type]
    for i, condition in enumerate(goal.conditions):
        where = f"conditions[{i}]"
        if condition.field not in fields:
            raise ApiError(400, f"invalid goal: field {condition.field!r} does not apply to a "
                           f"{goal.type} goal; use one of {', '.join(sorted(fields))}",
                           f"{where}.field")
        if condition.operator not in VALUELESS_OPERATORS and not condition.value:
            raise ApiError(400, f"invalid goal: operator {condition.operator!r} needs a value",
                           f"{where}.value")
        if has_control_chars(condition.value):
            raise ApiError(400, "invalid goal: a value must not contain control characters",
                           f"{where}.value")
    return msgspec.structs.replace(goal, name=name)


def _field_of(message: str) -> str | None:
    at = _AT_PATH.search(message)
    path = at.group(1) if at else ""
    named = _NAMED_FIELD.search(message)
    if named:  # "Object missing required field `x`" / "Object contains unknown field `x`"
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path or None


def goal_of_row(row: Mapping[str, Any]) -> Goal:
    core = goal_rules.goal_from_row(dict(row))
    return Goal(
        id=core.id, name=core.name, type=core.type,
        conditions=[Condition(c.field, c.operator, c.value) for c in core.conditions],
        logic=core.logic, is_conversion=core.is_conversion,
        created_at=iso_ms(int(row["created_ms"])),
    )


def goal_row(site: str, goal_id: str, goal: GoalInput, created_ms: int, version: int,
             deleted: bool = False) -> dict[str, Any]:
    """A ``goals`` table row; conditions as the JSON `goal_from_row` decodes."""
    return {
        "site_id": site, "goal_id": goal_id, "name": goal.name, "type": goal.type,
        "conditions": _conditions_encoder.encode(goal.conditions).decode(),
        "logic": goal.logic, "is_conversion": int(goal.is_conversion),
        "created_at": created_ms, "version": version, "deleted": int(deleted),
    }


def input_of(goal: Goal) -> GoalInput:
    return GoalInput(goal.name, goal.type, goal.conditions, goal.logic, goal.is_conversion)


def routes(ctx: ApiContext) -> list[Route]:
    def goals_written(site: str) -> None:
        ctx.goal_names.pop(site, None)  # this process's copy; other replicas' age out
        ctx.goals_changed()

    async def read_body(request: Request) -> bytes:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise ApiError(413, f"the body is over {MAX_BODY_BYTES} bytes")
        return body

    async def current(site: str, goal_id: str) -> dict[str, Any]:
        rows = await ctx.run(queries.GOAL, {"site": site, "goal": goal_id})
        if not rows:
            raise ApiError(404, "no such goal for this site", "goal_id")
        return rows[0]

    async def list_goals(request: Request) -> Response:
        site, _ = await ctx.begin(request, ("site",))
        rows = await ctx.run(queries.GOALS, {"site": site.domain})
        return json_response(GoalList(site.domain, [goal_of_row(r) for r in rows]))

    async def create_goal(request: Request) -> Response:
        site, _ = await ctx.begin(request, ("site",))
        goal = decode_goal(await read_body(request))
        existing = await ctx.run(queries.GOALS, {"site": site.domain})
        if len(existing) >= MAX_GOALS_PER_SITE:
            raise ApiError(409, f"a site may have at most {MAX_GOALS_PER_SITE} goals")
        row = goal_row(site.domain, uuid.uuid4().hex, goal, time.time_ns() // 1_000_000,
                       time.time_ns())
        await ctx.write("goals", [row])
        goals_written(site.domain)
        return json_response(goal_of_row({**row, "created_ms": row["created_at"]}), 201)

    async def update_goal(request: Request) -> Response:
        site, _ = await ctx.begin(request, ("site",))
        goal_id = goal_id_of(request.path_params["goal_id"])
        goal = decode_goal(await read_body(request))
        old = await current(site.domain, goal_id)
        row = goal_row(site.domain, goal_id, goal, int(old["created_ms"]),
                       max(time.time_ns(), int(old["version"]) + 1))
        await ctx.write("goals", [row])
        goals_written(site.domain)
        return json_response(goal_of_row({**row, "created_ms": row["created_at"]}))

    async def delete_goal(request: Request) -> Response:
        site, _ = await ctx.begin(request, ("site",))
        goal_id = goal_id_of(request.path_params["goal_id"])
        old = await current(site.domain, goal_id)
        kept = input_of(goal_of_row(old))
        await ctx.write("goals", [goal_row(site.domain, goal_id, kept, int(old["created_ms"]),
                                           max(time.time_ns(), int(old["version"]) + 1),
                                           deleted=True)])
        goals_written(site.domain)
        return json_response(Deleted(goal_id, True))

    return [
        api_route("/api/goals", {"GET": list_goals, "POST": create_goal}),
        api_route("/api/goals/{goal_id}", {"PUT": update_goal, "DELETE": delete_goal}),
    ]
