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
