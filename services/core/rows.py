"""Rows for the ``events`` and ``sessions`` tables (PRODUCT.md S5), derived only from the
event and the session state, so a replay writes rows identical to the first write."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.core.event import Event
from services.core.session import SessionState, share

EVENT_NAMES = {"pageview": "pageview", "click": "click", "engagement": "engagement",
               "custom": "custom"}


def event_row(event: Event, converted_goals: Sequence[str] = ()) -> dict[str, Any]:
    keys: list[str] = []
    values: list[str] = []
    if event.kind == "click":
        keys = ["click_url", "click_text", "asin", "click_kind"]
        values = [event.click_url, event.click_text, event.asin, event.click_kind]
    elif event.kind == "custom":
        for key, value in sorted(event.props.items()):
            keys.append(key)
            values.append(value)
    return {
        "site_id": event.site,
        "timestamp": event.ts,
        "name": EVENT_NAMES[event.kind],
        "session_id": event.sid,
        "event_id": event.id,
        "visitor_id": event.vid,
        "url": event.url,
        "path": event.path,
        "referrer": event.referrer,
        "referrer_source": event.source,
        "utm_source": event.utm_source,
        "utm_medium": event.utm_medium,
        "utm_campaign": event.utm_campaign,
        "utm_term": event.utm_term,
        "utm_content": event.utm_content,
        "device": event.device,
        "browser": event.browser,
        "os": event.os,
        "country": event.country,
        "click_domain": event.click_domain,
        "scroll_depth": event.scroll,
        "visible_ms": event.visible_ms,
        "custom_name": event.name,
        "goals": list(converted_goals),
        "meta_keys": keys,
        "meta_values": values,
    }


def session_row(state: SessionState) -> dict[str, Any]:
    return {
        "site_id": state.site,
        "started_at": state.started_at,
        "session_id": state.sid,
        "version": state.events,
        "last_stream": state.stream,
        "last_offset": state.offset,
        "visitor_id": state.visitor_id,
        "last_event_at": state.last_event_at,
        "pageviews": state.pageviews,
        "events": state.events,
        "entry_page": state.entry_page,
        "exit_page": state.exit_page,
        "referrer": state.referrer,
        "referrer_source": state.source,
        "utm_source": state.utm_source,
        "utm_medium": state.utm_medium,
        "utm_campaign": state.utm_campaign,
        "device": state.device,
        "browser": state.browser,
        "os": state.os,
        "country": state.country,
        "max_scroll": state.max_scroll,
        "visible_ms": state.visible_ms,
        "duration": state.duration_seconds,
        "has_clicked": int(state.has_clicked),
        "has_converted": int(state.has_converted),
        "goals": list(state.goals),
        "is_bounce": int(state.is_bounce),
    }


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
    )


SESSION_COLUMNS_FOR_RELOAD = """
    site_id, session_id, last_stream, last_offset, visitor_id,
    toUnixTimestamp64Milli(started_at) AS started_at_ms,
    toUnixTimestamp64Milli(last_event_at) AS last_event_at_ms,
    pageviews, events, entry_page, exit_page, referrer, referrer_source,
    utm_source, utm_medium, utm_campaign, device, browser, os, country,
    max_scroll, visible_ms, has_clicked, has_converted, goals, is_bounce
"""
