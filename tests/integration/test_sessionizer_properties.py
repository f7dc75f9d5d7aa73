"""Property-based tests of the sessionizer against the real Store (chDB), issue #4:

- the stored sessions do not depend on batch boundaries and equal the pure fold of
  `apply_event` over each session's events;
- replaying any suffix of the input (a crash before the commit), including after a crash
  between the events insert and the sessions insert, changes nothing that is stored;
- conversions never exceed sessions.

Messages are built with the real encoder and fed to `Sessionizer.handle` with the offsets a
transport would give them (the transports have their own contract tests).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.event import Event, encode_event
from services.core.goals import Condition, Goal
from services.core.rows import SESSION_COLUMNS_FOR_RELOAD, session_from_row
from services.core.session import SessionState, apply_event
from services.core.store import Store
from services.core.transport import Message
from services.sessionizer.worker import Sessionizer

DOMAINS = ["stripe.com", "amazon.com", "blog.example.org"]
PATHS = ["/", "/pricing", "/blog/a"]
_sites = itertools.count()


@st.composite
def event_specs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["pageview", "click", "engagement", "custom"]))
    if kind == "pageview":
        return {"kind": kind, "path": draw(st.sampled_from(PATHS))}
    if kind == "click":
        domain = draw(st.sampled_from(DOMAINS))
        return {"kind": kind, "click_domain": domain, "click_url": f"https://{domain}/x",
                "click_text": draw(st.sampled_from(["Buy", "Docs", ""]))}
    if kind == "engagement":
        return {"kind": kind, "scroll": draw(st.integers(0, 100)),
                "visible_ms": draw(st.integers(0, 20_000))}
    return {"kind": kind, "name": draw(st.sampled_from(["signup", "share"]))}


conditions = st.one_of(
    st.builds(Condition, st.just("domain"), st.sampled_from(["equals", "contains", "not_equals"]),
              st.sampled_from(DOMAINS + ["AMAZON"])),
    st.builds(Condition, st.just("text"), st.sampled_from(["is_empty", "is_not_empty"])),
)


@st.composite
def goal_sets(draw: st.DrawFn, site: str) -> tuple[Goal, ...]:
    goals = []
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["click", "pageview", "custom"]))
        if kind == "click":
            conds = tuple(draw(st.lists(conditions, max_size=2)))
        elif kind == "pageview":
            conds = (Condition("path", "starts_with", draw(st.sampled_from(PATHS))),)
        else:
            conds = (Condition("name", "equals", "signup"),)
        goals.append(Goal(id=f"g{i}", site=site, name=f"goal {i}", type=kind, conditions=conds,
                          logic=draw(st.sampled_from(["all", "any"])),
                          is_conversion=draw(st.booleans())))
    return tuple(goals)


def build_messages(site: str, sessions: list[list[dict[str, Any]]], order: list[int]
                   ) -> list[Message]:
    """Interleave the sessions' events in the drawn order, keeping each session's order."""
    queues = [list(events) for events in sessions]
    sids = [f"sid{i:02d}" + "x" * 16 for i in range(len(sessions))]
    messages = []
    for offset, pick in enumerate(order, start=1):
        candidates = [i for i, q in enumerate(queues) if q]
        index = candidates[pick % len(candidates)]
        spec = dict(queues[index].pop(0))
        event = Event(id=uuid.uuid4().hex, site=site, sid=sids[index],
                      ts=1_764_000_000_000 + offset * 1000, url=f"https://{site}/",
                      path=spec.pop("path", "/"), **spec)
        messages.append(Message(0, offset, event.sid.encode(), encode_event(event)))
    return messages


def reference(messages: list[Message], goals: tuple[Goal, ...]) -> dict[str, SessionState]:
    from services.core.event import decode_event

    states: dict[str, SessionState] = {}
    for message in messages:
        event = decode_event(message.value)
        states[event.sid], _ = apply_event(states.get(event.sid), event, message.offset, goals)
    return states


def stored(store: Store, site: str) -> tuple[dict[str, SessionState], int]:
    rows = store.query(f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL "
                       "WHERE site_id = {s:String}", {"s": site})
    events = store.query("SELECT count() AS n FROM events FINAL WHERE site_id = {s:String}",
                         {"s": site})[0]["n"]
    return {r["session_id"]: session_from_row(r) for r in rows}, int(events)


def sessionizer(store: Store, goals: tuple[Goal, ...]) -> Sessionizer:
    worker = Sessionizer(transport=None, store=store, group="prop",  # type: ignore[arg-type]
                         batch_max_events=10_000, batch_max_seconds=60, idle_seconds=3600)
    worker.goals = goals
    worker._goals_loaded_at = float("inf")  # the drawn goals, never reloaded from the table
    return worker


async def feed(worker: Sessionizer, messages: list[Message], cuts: list[int]) -> None:
    """Process in batches split at ``cuts``, flushing each (a commit per batch)."""
    bounds = sorted({0, len(messages), *(c % (len(messages) + 1) for c in cuts)})
    for start, end in itertools.pairwise(bounds):
        await worker.handle(messages[start:end])
        await worker.flush()


session_lists = st.lists(st.lists(event_specs(), min_size=1, max_size=8), min_size=1,
                         max_size=4)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), sessions=session_lists)
def test_batch_boundaries_and_replays_change_nothing(store: Store, data: st.DataObject,
                                                     sessions: list[list[dict[str, Any]]]
                                                     ) -> None:
    site = f"prop{next(_sites)}.example"
    goals = data.draw(goal_sets(site))
    total = sum(len(s) for s in sessions)
    order = data.draw(st.lists(st.integers(0, 3), min_size=total, max_size=total))
    messages = build_messages(site, sessions, order)
    cuts = data.draw(st.lists(st.integers(0, total), max_size=4))
    expected = reference(messages, goals)

    asyncio.run(feed(sessionizer(store, goals), messages, cuts))
    states, event_count = stored(store, site)
    assert states == expected
    assert event_count == len(messages)

    # A crash before the commit: a fresh worker (nothing in memory) re-reads a suffix.
    suffix = data.draw(st.integers(0, total - 1))
    asyncio.run(feed(sessionizer(store, goals), messages[suffix:], []))
    assert stored(store, site) == (expected, len(messages))

    # A crash between the events insert and the sessions insert of a batch, on a fresh site:
    # the batch's event rows are stored, its session rows and its commit are not.
    crash_site = f"prop{next(_sites)}.example"
    crash_goals = tuple(msgspec.structs.replace(g, site=crash_site) for g in goals)
    crash_messages = build_messages(crash_site, sessions, order)
    start = data.draw(st.integers(0, total - 1))
    asyncio.run(feed(sessionizer(store, crash_goals), crash_messages[:start], []))
    crashed = sessionizer(store, crash_goals)
    asyncio.run(crashed.handle(crash_messages[start:]))
    store.insert("events", crashed._batch.events)  # then the process died
    asyncio.run(feed(sessionizer(store, crash_goals), crash_messages[start:], []))
    crash_states, crash_events = stored(store, crash_site)
    assert crash_events == len(messages)
    assert {sid: msgspec.structs.replace(state, site=site) for sid, state in crash_states.items()
            } == expected

    counts = store.query("SELECT count() AS sessions, countIf(has_converted = 1) AS conversions "
                         "FROM sessions FINAL WHERE site_id = {s:String}", {"s": site})[0]
    assert counts["conversions"] <= counts["sessions"] == len(sessions)


def test_reload_finds_stored_sessions_by_site_including_odd_ids(store: Store) -> None:
    from services.sessionizer.state import load_sessions

    worker = sessionizer(store, ())
    sids = ["plainid" + "x" * 15, "odd,id" + "x" * 16, "other" + "y" * 17]
    messages = [Message(0, i + 1, sid.encode(), encode_event(Event(
        id=uuid.uuid4().hex, site="reload.example" if i < 2 else "reload2.example", sid=sid,
        ts=1_764_000_000_000 + i, kind="pageview", url="https://r/", path="/")))
        for i, sid in enumerate(sids)]
    asyncio.run(feed(worker, messages, []))
    keys = {("reload.example", sids[0]), ("reload.example", sids[1]),
            ("reload2.example", sids[2]), ("reload.example", "missing" + "z" * 15)}
    found = load_sessions(store, keys)
    assert set(found) == keys - {("reload.example", "missing" + "z" * 15)}
    assert all(state.pageviews == 1 for state in found.values())
