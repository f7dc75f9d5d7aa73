"""Rows for the ``events`` and ``sessions`` tables (PRODUCT.md S5), derived only from the
event and the session state, so a replay writes rows identical to the first write."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from msgspec.structs import astuple

from services.core.event import Event
from services.core.session import NOT_A_CLICK, FirstClick, SessionState, share

EVENT_NAMES = {"pageview": "pageview", "click": "click", "engagement": "engagement",
               "custom": "custom"}
# Array columns are tuples: the empty one and the click keys are shared, not allocated per row.
_CLICK_META_KEYS = ("click_url", "click_text", "asin", "click_kind")
_NO_META: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


_TRANSPOSE_CHUNK = 1000


def _transpose(items: Sequence[Any], fields: Sequence[str]) -> dict[str, list[Any]]:
    """Struct field -> its values across ``items``, in C-level passes (no dict per row).

    A chunk at a time: one ``zip(*rows)`` call over a 20,000-event batch held the GIL for
    ~50-115 ms in a worker thread, stalling every request on the event loop of
    ``clickport dev`` meanwhile; 1,000 rows hold it ~1-2 ms, and the whole is faster too."""
    columns: list[list[Any]] = [[] for _ in fields]
    for start in range(0, len(items), _TRANSPOSE_CHUNK):
        chunk = zip(*map(astuple, items[start:start + _TRANSPOSE_CHUNK]), strict=True)
        for column, values in zip(columns, chunk, strict=True):
            column.extend(values)
    return dict(zip(fields, columns, strict=True))


def _meta(event: Event) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if event.kind == "click":
        return _CLICK_META_KEYS, (event.click_url, event.click_text, event.asin,
                                  event.click_kind)
    if event.kind == "custom" and event.props:
        keys = tuple(sorted(event.props))
        return keys, tuple(event.props[key] for key in keys)
    return _NO_META


def event_columns(events: Sequence[Event], goals: Sequence[Sequence[str]],
                  first_clicks: Sequence[FirstClick]) -> dict[str, Sequence[Any]]:
    """The ``events`` rows of ``events`` (``goals[i]``: the ids of every goal event ``i``
    matched; ``first_clicks[i]``: its `first_click`), column by column."""
    e = _transpose(events, Event.__struct_fields__)
    first_click_at, is_first_click = zip(*first_clicks, strict=True) if events else ((), ())
    meta = [_meta(event) for event in events]
    return {
        "site_id": e["site"],
        "timestamp": e["ts"],
        "name": [EVENT_NAMES[kind] for kind in e["kind"]],
        "session_id": e["sid"],
        "event_id": e["id"],
        "visitor_id": e["vid"],
        "url": e["url"],
        "path": e["path"],
        "referrer": e["referrer"],
        "referrer_source": e["source"],
        "utm_source": e["utm_source"],
        "utm_medium": e["utm_medium"],
        "utm_campaign": e["utm_campaign"],
        "utm_term": e["utm_term"],
        "utm_content": e["utm_content"],
        "device": e["device"],
        "browser": e["browser"],
        "os": e["os"],
        "country": e["country"],
        "click_domain": e["click_domain"],
        "scroll_depth": e["scroll"],
        "visible_ms": e["visible_ms"],
        "custom_name": e["name"],
        "goals": goals,
        "meta_keys": [keys for keys, _ in meta],
        "meta_values": [values for _, values in meta],
        "first_click_at": first_click_at,
        "is_first_click": is_first_click,
    }


def event_row(event: Event, converted_goals: Sequence[str] = (),
              first: FirstClick = NOT_A_CLICK) -> dict[str, Any]:
    """One event's row (the same values as `event_columns`)."""
    return {name: values[0]
            for name, values in event_columns([event], [converted_goals], [first]).items()}


def session_columns(states: Sequence[SessionState]) -> dict[str, Sequence[Any]]:
    """The ``sessions`` rows of ``states``, column by column."""
    s = _transpose(states, SessionState.__struct_fields__)
    return {
        "site_id": s["site"],
        "started_at": s["started_at"],
        "session_id": s["sid"],
        "version": s["events"],
        "last_stream": s["stream"],
        "last_offset": s["offset"],
        "visitor_id": s["visitor_id"],
        "last_event_at": s["last_event_at"],
        "pageviews": s["pageviews"],
        "events": s["events"],
        "entry_page": s["entry_page"],
        "exit_page": s["exit_page"],
        "referrer": s["referrer"],
        "referrer_source": s["source"],
        "utm_source": s["utm_source"],
        "utm_medium": s["utm_medium"],
        "utm_campaign": s["utm_campaign"],
        "device": s["device"],
        "browser": s["browser"],
        "os": s["os"],
        "country": s["country"],
        "max_scroll": s["max_scroll"],
        "visible_ms": s["visible_ms"],
        "duration": [state.duration_seconds for state in states],
        "has_clicked": [int(flag) for flag in s["has_clicked"]],
        "has_converted": [int(flag) for flag in s["has_converted"]],
        "goals": s["goals"],
        "is_bounce": [int(flag) for flag in s["is_bounce"]],
        "clicked_domains": s["clicked_domains"],
        "clicked_first_at": s["clicked_first_at"],
    }


class EventBatch:
    """The event rows of one insert (`Columns` for the Store): the events and the goals each
    matched, turned into columns once, when the Store asks."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.goals: list[list[str]] = []
        self.first_clicks: list[FirstClick] = []
        self.oldest_ms = 0  # the earliest receive time (``Event.ts``) in the batch

    def __len__(self) -> int:
        return len(self.events)

    def add(self, event: Event, goals: list[str], first: FirstClick) -> None:
        if not self.events or event.ts < self.oldest_ms:
            self.oldest_ms = event.ts
        self.events.append(event)
        self.goals.append(goals)
        self.first_clicks.append(first)

    def columns(self) -> dict[str, Sequence[Any]]:
        return event_columns(self.events, self.goals, self.first_clicks)


class SessionBatch:
    """The session rows of one insert (`Columns` for the Store): the last state of each
    session the batch touched. Only that version is written, so only its row is built."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], SessionState] = {}

    def __len__(self) -> int:
        return len(self.states)

    def put(self, key: tuple[str, str], state: SessionState) -> None:
        self.states[key] = state

    def columns(self) -> dict[str, Sequence[Any]]:
        return session_columns(list(self.states.values()))


def session_from_row(row: dict[str, Any]) -> SessionState:
    """Rebuild a session's state from its stored row (timestamps as integer ms); repeated
    strings are shared as `new_session` does."""
    return SessionState(
        site=share(row["site_id"]),
        sid=row["session_id"],
        offset=int(row["last_offset"]),
        stream=int(row["last_stream"]),
        visitor_id=int(row["visitor_id"]),
        started_at=int(row["started_at_ms"]),
        last_event_at=int(row["last_event_at_ms"]),
        pageviews=int(row["pageviews"]),
        events=int(row["events"]),
        entry_page=share(row["entry_page"]),
        exit_page=share(row["exit_page"]),
        referrer=share(row["referrer"]),
        source=share(row["referrer_source"]),
        utm_source=share(row["utm_source"]),
        utm_medium=share(row["utm_medium"]),
        utm_campaign=share(row["utm_campaign"]),
        device=share(row["device"]),
        browser=share(row["browser"]),
        os=share(row["os"]),
        country=share(row["country"]),
        max_scroll=int(row["max_scroll"]),
        visible_ms=int(row["visible_ms"]),
        has_clicked=bool(row["has_clicked"]),
        has_converted=bool(row["has_converted"]),
        goals=tuple(row["goals"]),
        is_bounce=bool(row["is_bounce"]),
        clicked_domains=tuple(share(domain) for domain in row["clicked_domains"]),
        clicked_first_at=tuple(int(ms) for ms in row["clicked_first_at_ms"]),
    )


SESSION_COLUMNS_FOR_RELOAD = """
    site_id, session_id, last_stream, last_offset, visitor_id,
    toUnixTimestamp64Milli(started_at) AS started_at_ms,
    toUnixTimestamp64Milli(last_event_at) AS last_event_at_ms,
    pageviews, events, entry_page, exit_page, referrer, referrer_source,
    utm_source, utm_medium, utm_campaign, device, browser, os, country,
    max_scroll, visible_ms, has_clicked, has_converted, goals, is_bounce, clicked_domains,
    arrayMap(t -> toUnixTimestamp64Milli(t), clicked_first_at) AS clicked_first_at_ms
"""
