"""Request parameters checked at the edge (PRODUCT.md A7): each endpoint names the query
parameters it takes, and anything else is a 400 naming the parameter. Values never carry
control characters or backslashes (no parameter needs them, and chDB parses a bound String
value as escaped text, where ``\\`` starts an escape and a tab or newline fails to bind), are
at most `MAX_VALUE_LENGTH` long, and are given once. Ids in paths have fixed formats.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.requests import Request

from services.api.errors import ApiError
from services.core.beacon import SESSION_ID_PATTERN

MAX_VALUE_LENGTH = 2048
PERIOD_PARAMS = ("site", "period", "from", "to")
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_GOAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DIGITS = re.compile(r"^[0-9]{1,6}$")


def has_control_chars(text: str) -> bool:
    """C0 controls, DEL or C1 controls."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def has_unsafe_chars(text: str) -> bool:
    """Control characters or a backslash."""
    return "\\" in text or has_control_chars(text)


def query_of(request: Request, allowed: Iterable[str]) -> dict[str, str]:
    """The request's query parameters, each allowed, given once and free of unsafe chars."""
    names = frozenset(allowed)
    found: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in names:
            shown = repr(name[:40]) if not has_unsafe_chars(name) else "with control characters"
            takes = ", ".join(sorted(names)) or "no parameters"
            raise ApiError(400, f"unknown parameter {shown}; this endpoint takes {takes}",
                           name[:40])
        if name in found:
            raise ApiError(400, f"'{name}' is given more than once", name)
        if has_unsafe_chars(value):
            raise ApiError(400, f"'{name}' must not contain control characters or backslashes",
                           name)
        if len(value) > MAX_VALUE_LENGTH:
            raise ApiError(400, f"'{name}' is longer than {MAX_VALUE_LENGTH} characters", name)
        found[name] = value
    return found


def int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not _DIGITS.match(text) or not low <= int(text) <= high:
        raise ApiError(400, f"'{name}' must be a whole number from {low} to {high}", name)
    return int(text)


def session_id_of(text: str) -> str:
    if not _SESSION_ID.match(text):
        raise ApiError(400, "'session_id' must be 16-64 characters of A-Z a-z 0-9 _ -",
                       "session_id")
    return text


def goal_id_of(text: str) -> str:
    if not _GOAL_ID.match(text):
        raise ApiError(400, "'goal_id' must be 1-64 characters of A-Z a-z 0-9 _ -", "goal_id")
    return text
