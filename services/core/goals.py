"""Goal matching (PRODUCT.md G1-G5): pure functions from a goal and an event to a yes/no.

Comparison is case-insensitive. Conditions combine with ``all`` (AND, the default) or
``any`` (OR); a goal with no conditions matches every event of its type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import msgspec

from services.core.event import Event

GoalType = Literal["click", "pageview", "custom"]
Operator = Literal[
    "equals", "not_equals", "contains", "not_contains",
    "starts_with", "ends_with", "is_empty", "is_not_empty",
]
Field = Literal["url", "domain", "text", "title", "asin", "path", "name"]

FIELDS_BY_TYPE: dict[str, frozenset[str]] = {
    "click": frozenset({"url", "domain", "text", "title", "asin"}),
    "pageview": frozenset({"path"}),
    "custom": frozenset({"name"}),
}
_KIND_OF_TYPE = {"click": "click", "pageview": "pageview", "custom": "custom"}


class Condition(msgspec.Struct, frozen=True):
    field: Field
    operator: Operator
    value: str = ""


class Goal(msgspec.Struct, frozen=True):
    id: str
    site: str
    name: str
    type: GoalType
    conditions: tuple[Condition, ...] = ()
    logic: Literal["all", "any"] = "all"
    is_conversion: bool = True


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "equals": lambda have, want: have == want,
    "not_equals": lambda have, want: have != want,
    "contains": lambda have, want: want in have,
    "not_contains": lambda have, want: want not in have,
    "starts_with": lambda have, want: have.startswith(want),
    "ends_with": lambda have, want: have.endswith(want),
    "is_empty": lambda have, _: have == "",
    "is_not_empty": lambda have, _: have != "",
}


def field_value(event: Event, field: str) -> str:
    if field == "url":
        return event.click_url
    if field == "domain":
        return event.click_domain
    if field in ("text", "title"):
        return event.click_text
    if field == "asin":
        return event.asin
    if field == "path":
        return event.path
    if field == "name":
        return event.name
    return ""


def condition_holds(condition: Condition, event: Event) -> bool:
    have = field_value(event, condition.field).casefold()
    return _OPERATORS[condition.operator](have, condition.value.casefold())


def goal_matches(goal: Goal, event: Event) -> bool:
    if _KIND_OF_TYPE[goal.type] != event.kind:
        return False
    if not goal.conditions:
        return True
    results = (condition_holds(c, event) for c in goal.conditions)
    return all(results) if goal.logic == "all" else any(results)


def matching_goals(goals: Sequence[Goal] | GoalIndex, event: Event) -> list[Goal]:
    if isinstance(goals, GoalIndex):
        return goals.matching(event)
    return [goal for goal in goals if goal.site == event.site and goal_matches(goal, event)]


_Compiled = tuple[Goal, tuple[tuple[str, Callable[[str, str], bool], str], ...]]


class GoalIndex:
    """The same matching as `goal_matches`, prepared once per goal refresh: goals grouped by
    (site, event kind), so an event meets only the goals that can match it, condition values
    casefolded once, and each event field casefolded at most once per event."""

    def __init__(self, goals: Sequence[Goal]) -> None:
        self.goals = tuple(goals)
        self._by_site_kind: dict[tuple[str, str], list[_Compiled]] = {}
        for goal in self.goals:
            conditions = tuple((c.field, _OPERATORS[c.operator], c.value.casefold())
                               for c in goal.conditions)
            key = (goal.site, _KIND_OF_TYPE[goal.type])
            self._by_site_kind.setdefault(key, []).append((goal, conditions))

    def __len__(self) -> int:
        return len(self.goals)

    def __iter__(self) -> Iterator[Goal]:
        return iter(self.goals)

    def matching(self, event: Event) -> list[Goal]:
        candidates = self._by_site_kind.get((event.site, event.kind))
        if not candidates:
            return []
        values: dict[str, str] = {}

        def have(field: str) -> str:
            if field not in values:
                values[field] = field_value(event, field).casefold()
            return values[field]

        found = []
        for goal, conditions in candidates:
            results = (test(have(field), want) for field, test, want in conditions)
            if not conditions or (all(results) if goal.logic == "all" else any(results)):
                found.append(goal)
        return found


_conditions_decoder = msgspec.json.Decoder(tuple[Condition, ...])


def goal_from_row(row: dict[str, object]) -> Goal:
    """A goal from its ``goals`` table row (conditions are stored as JSON)."""
    return Goal(
        id=str(row["goal_id"]),
        site=str(row["site_id"]),
        name=str(row["name"]),
        type=row["type"],  # type: ignore[arg-type]
        conditions=_conditions_decoder.decode(str(row["conditions"])),
        logic=row["logic"],  # type: ignore[arg-type]
        is_conversion=bool(row["is_conversion"]),
    )


GOALS_QUERY = (
    "SELECT site_id, goal_id, name, type, conditions, logic, is_conversion "
    "FROM goals FINAL WHERE deleted = 0 ORDER BY site_id, goal_id"
)
