"""G2-G4: each operator, case-insensitivity, all/any logic, type matching."""

from __future__ import annotations

import pytest
from helpers import event

from services.core.goals import Condition, Goal, goal_matches

CLICK = event("click", click_url="https://www.Amazon.com/dp/B07FZ8S74R", click_domain="amazon.com",
              click_text="Buy the Echo", asin="B07FZ8S74R")


def goal(*conditions: Condition, logic: str = "all", type_: str = "click") -> Goal:
    return Goal(id="g", site="example.com", name="n", type=type_,  # type: ignore[arg-type]
                conditions=conditions, logic=logic)  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "operator", "value", "expected"), [
    ("domain", "equals", "AMAZON.COM", True),
    ("domain", "equals", "amazon.de", False),
    ("domain", "not_equals", "amazon.de", True),
    ("url", "contains", "/dp/", True),
    ("url", "not_contains", "/dp/", False),
    ("url", "starts_with", "https://www.amazon", True),
    ("url", "ends_with", "s74r", True),
    ("text", "contains", "echo", True),
    ("title", "equals", "buy the echo", True),
    ("asin", "is_not_empty", "", True),
    ("asin", "is_empty", "", False),
])
def test_operators(field: str, operator: str, value: str, expected: bool) -> None:
    condition = Condition(field, operator, value)  # type: ignore[arg-type]
    assert goal_matches(goal(condition), CLICK) is expected


def test_all_needs_every_condition_and_any_needs_one() -> None:
    yes = Condition("domain", "equals", "amazon.com")
    no = Condition("domain", "equals", "ebay.com")
    assert not goal_matches(goal(yes, no), CLICK)
    assert goal_matches(goal(yes, no, logic="any"), CLICK)


def test_goal_type_must_match_event_kind() -> None:
    assert not goal_matches(goal(type_="pageview"), CLICK)
    assert goal_matches(goal(Condition("path", "starts_with", "/blog"), type_="pageview"),
                        event("pageview", path="/blog/x"))


def test_the_goal_index_matches_exactly_like_goal_matches() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from services.core.goals import FIELDS_BY_TYPE, GoalIndex, matching_goals

    operators = ["equals", "not_equals", "contains", "not_contains", "starts_with",
                 "ends_with", "is_empty", "is_not_empty"]
    words = st.sampled_from(["", "Amazon", "amazon.com", "/dp/", "Buy", "/blog", "signup"])

    @st.composite
    def goals(draw: st.DrawFn) -> Goal:
        kind = draw(st.sampled_from(["click", "pageview", "custom"]))
        fields = sorted(FIELDS_BY_TYPE[kind])
        conditions = tuple(Condition(draw(st.sampled_from(fields)),  # type: ignore[arg-type]
                                     draw(st.sampled_from(operators)), draw(words))
                           for _ in range(draw(st.integers(0, 3))))
        return Goal(id=str(draw(st.integers(0, 10**6))), site=draw(st.sampled_from(
            ["example.com", "other.com"])), name="g", type=kind,  # type: ignore[arg-type]
            conditions=conditions, logic=draw(st.sampled_from(["all", "any"])))

    @st.composite
    def events(draw: st.DrawFn) -> object:
        return event(draw(st.sampled_from(["click", "pageview", "custom", "engagement"])),
                     site=draw(st.sampled_from(["example.com", "other.com"])),
                     click_url=draw(words), click_domain=draw(words), click_text=draw(words),
                     asin=draw(words), path=draw(words), name=draw(words))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(goals(), max_size=6), events())
    def check(goal_list: list[Goal], item: object) -> None:
        assert GoalIndex(goal_list).matching(item) == matching_goals(goal_list, item)  # type: ignore[arg-type]

    check()
