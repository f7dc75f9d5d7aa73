"""Session rules (PRODUCT.md S1-S4, G5) as one pure function:
``apply_event(previous state, event, offset, goals, stream) -> (new state, goal ids)``.

Guarantees:
- ``has_clicked`` and ``has_converted`` are sticky; ``is_bounce`` only ever goes 1 -> 0.
- Bounce is the four-condition rule: at most one pageview, no outbound click, max scroll
  under 25 %, visible time under 15 s. Every input to it only grows, so recomputing it on
  every event can never turn an engaged session back into a bounce.
- ``stream``/``offset`` locate the last applied event on the transport (a stream is one
  topic partition, or one embedded queue file): an event of the same stream at or below that
  offset was applied already (a replay after a crash) and `is_applied` says so. An event
  from another stream (the partition count changed, a new topic, a new queue file) is never
  taken for a replay.
- The stored row's version is ``events``, the number of events applied: it grows by one with
  every event on whatever partition, and a replay reproduces it exactly.
- Each destination domain the session clicked is kept with the time of its first click, so
  every click row can say when its (session, domain) pair was first clicked and whether it is
  that click (`first_click`). The outbound report counts unique clicks from these instead of
  hashing every session id (docs/api.md). A session stored before migration 008 has no such
  list, and a session keeps at most MAX_CLICKED_DOMAINS: clicks it does not track are marked
  "untracked" (`UNTRACKED_CLICK`) for good.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from services.core.event import Event
from services.core.goals import Goal, GoalIndex, matching_goals

BOUNCE_MAX_PAGEVIEWS = 1
BOUNCE_MAX_SCROLL = 25  # a bounce scrolled less than this
BOUNCE_MAX_VISIBLE_MS = 15_000  # a bounce was visible less than this
# A session (a bot, say) that clicks more distinct domains than this keeps no more: clicks to
# further domains are marked untracked, which the outbound report still counts exactly.
MAX_CLICKED_DOMAINS = 200


class SessionState(msgspec.Struct, frozen=True, gc=False):
    site: str
    sid: str
    offset: int  # transport offset of the last applied event
    visitor_id: int
    started_at: int  # ms since epoch
    last_event_at: int
    pageviews: int = 0
    events: int = 0
    entry_page: str = ""
    exit_page: str = ""
    referrer: str = ""
    source: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    device: str = ""
    browser: str = ""
    os: str = ""
    country: str = ""
    max_scroll: int = 0
    visible_ms: int = 0
    has_clicked: bool = False
    has_converted: bool = False
    goals: tuple[str, ...] = ()
    is_bounce: bool = True
    stream: int = 0  # transport stream (topic partition, queue file) of the last event
    # The domains clicked, in first-click order, and the time (ms) of each one's first click.
    # Empty with has_clicked: a session stored before these were kept (clicks untracked).
    clicked_domains: tuple[str, ...] = ()
    clicked_first_at: tuple[int, ...] = ()

    @property
    def duration_seconds(self) -> int:
        return self.visible_ms // 1000


def is_bounce(pageviews: int, has_clicked: bool, max_scroll: int, visible_ms: int) -> bool:
    return (
        pageviews <= BOUNCE_MAX_PAGEVIEWS
        and not has_clicked
        and max_scroll < BOUNCE_MAX_SCROLL
        and visible_ms < BOUNCE_MAX_VISIBLE_MS
    )


# (first_click_at ms, is_first_click) of an event row. The two values below 2 are markers, far
# before any period the API can ask for. A click row with first_click_at 0 is "unmarked": it
# was written before migration 008, or by an older release during a rollback.
FirstClick = tuple[int, int]
NOT_A_CLICK: FirstClick = (0, 0)
UNTRACKED_CLICK: FirstClick = (1, 0)  # its session does not track the clicked domain


def first_click(before: SessionState | None, after: SessionState, event: Event) -> FirstClick:
    """For the row of ``event``, just applied to ``before`` giving ``after``: when its session
    first clicked its domain, and 1 if this event is that click. Replays give the same pair,
    as they give the same state."""
    if event.kind != "click":
        return NOT_A_CLICK
    try:
        index = after.clicked_domains.index(event.click_domain)
    except ValueError:  # stored before migration 008, or past MAX_CLICKED_DOMAINS
        return UNTRACKED_CLICK
    added_now = before is None or len(before.clicked_domains) <= index
    return after.clicked_first_at[index], int(added_now)


def is_applied(state: SessionState | None, offset: int, stream: int = 0) -> bool:
    """True when the event at ``stream``/``offset`` is already in ``state`` (a replay)."""
    return state is not None and stream == state.stream and offset <= state.offset


_SHARED: dict[str, str] = {}
_SHARED_MAX = 100_000


def share(text: str) -> str:
    """One copy of a repeated string (site, page, source, device...) across the sessions in
    memory; each decoded event brings fresh copies. A bounded table, emptied when full:
    ``sys.intern`` would keep every distinct page path for good on newer Pythons."""
    found = _SHARED.get(text)
    if found is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        _SHARED[text] = found = text
    return found


def new_session(event: Event, offset: int, stream: int = 0) -> SessionState:
    shared = share
    return SessionState(
        site=shared(event.site),
        sid=event.sid,
        offset=offset,
        stream=stream,
        visitor_id=event.vid,
        started_at=event.ts,
        last_event_at=event.ts,
        entry_page=shared(event.path) if event.kind == "pageview" else "",
        referrer=shared(event.referrer),
        source=shared(event.source),
        utm_source=shared(event.utm_source),
        utm_medium=shared(event.utm_medium),
        utm_campaign=shared(event.utm_campaign),
        device=shared(event.device),
        browser=shared(event.browser),
        os=shared(event.os),
        country=shared(event.country),
    )


def apply_event(
    state: SessionState | None, event: Event, offset: int,
    goals: Sequence[Goal] | GoalIndex = (),
    stream: int = 0,
) -> tuple[SessionState, list[str]]:
    """Apply one event; returns the new state and the ids of every goal the event matched
    (conversion goals or not: the event row records them all, for the timeline). Only
    conversion goals set ``has_converted`` and join the session's ``goals``."""
    current = state if state is not None else new_session(event, offset, stream)
    is_pageview = event.kind == "pageview"
    pageviews = current.pageviews + is_pageview
    has_clicked = current.has_clicked or event.kind == "click"
    max_scroll = max(current.max_scroll, event.scroll if event.kind == "engagement" else 0)
    visible_ms = current.visible_ms + (event.visible_ms if event.kind == "engagement" else 0)
    exit_page = share(event.path) if is_pageview else current.exit_page
    matched = matching_goals(goals, event)
    new_goals = tuple(g.id for g in matched if g.is_conversion and g.id not in current.goals)
    clicked_domains, clicked_first_at = current.clicked_domains, current.clicked_first_at
    if (event.kind == "click" and event.click_domain not in clicked_domains
            and (clicked_domains or not current.has_clicked)  # else: earlier clicks unknown
            and len(clicked_domains) < MAX_CLICKED_DOMAINS):
        clicked_domains = (*clicked_domains, share(event.click_domain))
        clicked_first_at = (*clicked_first_at, event.ts)
    # Keyword arguments, not a dict of changes: replace(**changes) costs three times as much.
    return msgspec.structs.replace(
        current,
        offset=offset,
        stream=stream,
        last_event_at=max(current.last_event_at, event.ts),
        events=current.events + 1,
        pageviews=pageviews,
        has_clicked=has_clicked,
        max_scroll=max_scroll,
        visible_ms=visible_ms,
        is_bounce=current.is_bounce
        and is_bounce(pageviews, has_clicked, max_scroll, visible_ms),
        exit_page=exit_page,
        entry_page=current.entry_page or (exit_page if is_pageview else ""),
        goals=current.goals + new_goals,
        has_converted=current.has_converted or bool(new_goals),
        clicked_domains=clicked_domains,
        clicked_first_at=clicked_first_at,
    ), [g.id for g in matched]
