"""Interleaved sessions to post, and the sessions a fault-free run makes of what the Store
holds: the pure fold of `apply_event` over the stored events in posting order, at the
offsets a fresh queue gave them (tests/integration/test_sessionizer_properties.py proves
the sessionizer equals that fold without faults). Shared by the fault tests that compare
the stored sessions with it."""

from __future__ import annotations

from typing import Any

from stored_events import EVENT_COLUMNS, event_of_row

from services.core.goals import GOALS_QUERY, goal_from_row
from services.core.rows import SESSION_COLUMNS_FOR_RELOAD, session_from_row
from services.core.session import SessionState, apply_event
from services.core.store import Store

from .support import SITE


def beacons(sessions: int, prefix: str = "outage") -> list[dict[str, Any]]:
    """Interleaved sessions of pageviews, engagement and clicks (some convert a goal); each
    beacon's page URL carries its position, so its stored row can be put back in order."""
    plans = []
    for s in range(sessions):
        sid = f"{prefix}{s:04d}" + "x" * (22 - len(prefix) - 4)
        plan: list[dict[str, Any]] = [{"t": "p", "sid": sid}]
        for step in range(1 + s % 5):
            if step % 3 == 0:
                plan.append({"t": "c", "sid": sid, "ck": "primary", "ct": f"Buy {step}",
                             "cu": f"https://www.{'amazon' if s % 2 else 'stripe'}.com/dp/"
                                   f"B00000000{step}"})
            elif step % 3 == 1:
                plan.append({"t": "e", "sid": sid, "sd": (s * 7 + step) % 101,
                             "vt": 4_000 * step})
            else:
                plan.append({"t": "p", "sid": sid, "r": "https://www.google.com/"})
        plans.append(plan)
    ordered = []
    while any(plans):
        for plan in plans:
            if plan:
                ordered.append(plan.pop(0))
    for seq, beacon in enumerate(ordered):
        beacon.update(d=SITE, u=f"https://demo.localhost/page/{seq % 7}?seq={seq}")
    return ordered


def fold(store: Store, stream: int) -> dict[str, SessionState]:
    """The sessions a fault-free run makes of the stored events: `apply_event` over them in
    posting order, the n-th accepted beacon at offset n of the queue's stream (a fresh
    queue, one poster)."""
    goals = [goal_from_row(r) for r in store.query(GOALS_QUERY)]
    rows = store.query(f"SELECT {EVENT_COLUMNS} FROM events FINAL WHERE site_id = {{s:String}}",
                       {"s": SITE})
    rows.sort(key=lambda r: int(r["url"].rsplit("seq=", 1)[1]))
    states: dict[str, SessionState] = {}
    for offset, row in enumerate(rows, start=1):
        event = event_of_row(row)
        states[event.sid], _ = apply_event(states.get(event.sid), event, offset, goals,
                                           stream=stream)
    return states


def stored_sessions(store: Store) -> dict[str, SessionState]:
    rows = store.query(f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL "
                       "WHERE site_id = {s:String}", {"s": SITE})
    return {r["session_id"]: session_from_row(r) for r in rows}
