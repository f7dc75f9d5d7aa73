"""S2-S4 and G5: one test per rule."""

from __future__ import annotations

import msgspec
from helpers import event

from services.core.goals import Condition, Goal
from services.core.session import (
    MAX_CLICKED_DOMAINS,
    NOT_A_CLICK,
    UNTRACKED_CLICK,
    SessionState,
    apply_event,
    first_click,
)


def run(*events_: object, goals: tuple[Goal, ...] = ()) -> SessionState:
    state = None
    for offset, item in enumerate(events_, start=1):
        state, _ = apply_event(state, item, offset, goals)  # type: ignore[arg-type]
    assert state is not None
    return state


def test_a_single_pageview_is_a_bounce() -> None:
    state = run(event("pageview"))
    assert state.is_bounce and state.pageviews == 1 and not state.has_clicked


def test_bounce_flips_to_zero_on_the_first_outbound_click() -> None:
    state = run(event("pageview"), event("click", click_url="https://a.com/", click_domain="a.com"))
    assert state.has_clicked and not state.is_bounce


def test_bounce_flips_on_15_seconds_of_visible_time() -> None:
    assert run(event("pageview"), event("engagement", visible_ms=14_999)).is_bounce
    assert not run(event("pageview"), event("engagement", visible_ms=15_000)).is_bounce


def test_visible_time_adds_up_across_engagement_beacons() -> None:
    state = run(event("pageview"), event("engagement", visible_ms=8_000),
                event("engagement", visible_ms=7_000))
    assert state.visible_ms == 15_000 and state.duration_seconds == 15 and not state.is_bounce


def test_bounce_flips_on_a_second_pageview() -> None:
    state = run(event("pageview", path="/a"), event("pageview", path="/b"))
    assert not state.is_bounce
    assert (state.entry_page, state.exit_page) == ("/a", "/b")


def test_bounce_flips_on_scroll_25() -> None:
    assert run(event("pageview"), event("engagement", scroll=24)).is_bounce
    assert not run(event("pageview"), event("engagement", scroll=25)).is_bounce


def test_bounce_never_flips_back() -> None:
    state = run(event("pageview"), event("engagement", scroll=80), event("engagement", scroll=0))
    assert not state.is_bounce and state.max_scroll == 80


def test_has_clicked_is_sticky() -> None:
    state = run(event("click", click_url="https://a.com/"), event("pageview"), event("pageview"))
    assert state.has_clicked


def test_a_matching_conversion_goal_sets_has_converted_once() -> None:
    goal = Goal(id="g1", site="example.com", name="Stripe", type="click",
                conditions=(Condition("domain", "equals", "STRIPE.com"),))
    click = event("click", click_url="https://stripe.com/", click_domain="stripe.com")
    state = run(event("pageview"), click, click, goals=(goal,))
    assert state.has_converted and state.goals == ("g1",)


def test_replayed_offsets_are_recognised() -> None:
    from services.core.session import is_applied

    state = run(event("pageview"), event("pageview"))
    assert is_applied(state, 2) and not is_applied(state, 3) and not is_applied(None, 1)


def test_an_event_from_another_stream_is_never_a_replay() -> None:
    from services.core.session import is_applied

    state, _ = apply_event(None, event("pageview"), 900, stream=3)
    assert is_applied(state, 900, stream=3)
    assert not is_applied(state, 5, stream=7)  # the key moved: a low offset elsewhere
    moved, _ = apply_event(state, event("pageview"), 5, stream=7)
    assert (moved.stream, moved.offset, moved.events, moved.pageviews) == (7, 5, 2, 2)


def test_sessions_share_one_copy_of_repeated_strings() -> None:
    first, _ = apply_event(None, event("pageview", path="".join(["/pri", "cing"])), 1)
    second, _ = apply_event(None, event("pageview", sid="t" * 22,
                                        path="".join(["/pric", "ing"])), 2)
    assert first.entry_page == second.entry_page == "/pricing"
    assert first.entry_page is second.entry_page


def clicks_marks(*events_: object, start: SessionState | None = None) -> list[tuple[int, int]]:
    """The `first_click` mark of each event's row, applied in order from ``start``."""
    state, marks = start, []
    for offset, item in enumerate(events_, start=1):
        after, _ = apply_event(state, item, offset)  # type: ignore[arg-type]
        marks.append(first_click(state, after, item))  # type: ignore[arg-type]
        state = after
    return marks


def test_each_clicked_domain_keeps_the_time_of_its_first_click() -> None:
    def click(domain: str, ts: int) -> object:
        return event("click", ts=ts, click_url=f"https://{domain}/", click_domain=domain)

    marks = clicks_marks(event("pageview", ts=1), click("a.com", 10), click("b.com", 20),
                         click("a.com", 30), event("engagement", ts=40), click("b.com", 50),
                         click("c.com", 60))
    assert marks == [NOT_A_CLICK, (10, 1), (20, 1), (10, 0), NOT_A_CLICK, (20, 0),
                     (60, 1)]


def test_two_clicks_in_one_millisecond_mark_only_the_first() -> None:
    same = event("click", ts=5, click_url="https://a.com/", click_domain="a.com")
    assert clicks_marks(same, same) == [(5, 1), (5, 0)]


def test_a_session_stored_without_its_clicked_domains_marks_its_clicks_untracked() -> None:
    # Sessions stored before migration 008 reload with has_clicked and no domains: which
    # domains they clicked is not known, so none of their clicks may claim to be a first.
    legacy = msgspec.structs.replace(run(event("pageview")), has_clicked=True)
    click = event("click", click_url="https://a.com/", click_domain="a.com")
    assert clicks_marks(click, click, start=legacy) == [UNTRACKED_CLICK, UNTRACKED_CLICK]


def test_domains_past_the_cap_are_untracked_and_tracked_ones_stay_tracked() -> None:
    def click(domain: str, ts: int) -> object:
        return event("click", ts=ts, click_url=f"https://{domain}/", click_domain=domain)

    cap = MAX_CLICKED_DOMAINS
    domains = [f"d{n}.com" for n in range(cap + 2)]
    marks = clicks_marks(*(click(d, 1000 + n) for n, d in enumerate(domains)),
                         click("d0.com", 5000), click(domains[-1], 5001))
    assert marks[:cap] == [(1000 + n, 1) for n in range(cap)]
    assert marks[cap:] == [UNTRACKED_CLICK, UNTRACKED_CLICK, (1000, 0), UNTRACKED_CLICK]
