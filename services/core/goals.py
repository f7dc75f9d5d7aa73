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


# The event attribute each condition field reads.
_ATTRIBUTE_OF_FIELD = {"url": "click_url", "domain": "click_domain", "text": "click_text",
                       "title": "click_text", "asin": "asin", "path": "path", "name": "name"}


def field_value(event: Event, field: str) -> str:
    attribute = _ATTRIBUTE_OF_FIELD.get(field)
    return str(getattr(event, attribute)) if attribute is not None else ""


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


_Values = dict[str, str]  # condition field -> the event's casefolded value
_Test = Callable[[_Values], bool]


def _compile_condition(condition: Condition) -> _Test:
    """One closure per condition, the operator chosen once, not looked up per event."""
    field, want = condition.field, condition.value.casefold()
    tests: dict[str, _Test] = {
        "equals": lambda v: v[field] == want,
        "not_equals": lambda v: v[field] != want,
        "contains": lambda v: want in v[field],
        "not_contains": lambda v: want not in v[field],
        "starts_with": lambda v: v[field].startswith(want),
        "ends_with": lambda v: v[field].endswith(want),
        "is_empty": lambda v: v[field] == "",
        "is_not_empty": lambda v: v[field] != "",
    }
    return tests[condition.operator]


def _compile_goal(goal: Goal) -> _Test:
    """The goal's conditions as one test; a one-condition goal is its condition's test."""
    tests = tuple(_compile_condition(c) for c in goal.conditions)
    if not tests:
        return lambda _: True
    if len(tests) == 1:
        return tests[0]
    if goal.logic == "all":
        def every(values: _Values) -> bool:
            for test in tests:
                if not test(values):
                    return False
            return True
        return every

    def some(values: _Values) -> bool:
        for test in tests:
            if test(values):
                return True
        return False
    return some


class _Candidates:
    """The goals of one (site, event kind), each compiled, and the event attributes their
    conditions read (each casefolded once per event)."""

    def __init__(self) -> None:
        self.tests: list[tuple[Goal, _Test]] = []
        self.fields: dict[str, str] = {}  # condition field -> event attribute

    def add(self, goal: Goal) -> None:
        self.tests.append((goal, _compile_goal(goal)))
        for condition in goal.conditions:
            self.fields[condition.field] = _ATTRIBUTE_OF_FIELD[condition.field]

    def matching(self, event: Event) -> list[Goal]:
        values = {field: getattr(event, attribute).casefold()
                  for field, attribute in self.fields.items()}
        return [goal for goal, test in self.tests if test(values)]


class GoalIndex:
    """The same matching as `goal_matches`, prepared once per goal refresh: goals grouped by
    (site, event kind), so an event meets only the goals that can match it, each goal
    compiled into one closure, and each event field casefolded once per event."""

    def __init__(self, goals: Sequence[Goal]) -> None:
        self.goals = tuple(goals)
        self._by_site_kind: dict[tuple[str, str], _Candidates] = {}
        for goal in self.goals:
            key = (goal.site, _KIND_OF_TYPE[goal.type])
            self._by_site_kind.setdefault(key, _Candidates()).add(goal)

    def __len__(self) -> int:
        return len(self.goals)

    def __iter__(self) -> Iterator[Goal]:
        return iter(self.goals)

    def matching(self, event: Event) -> list[Goal]:
        candidates = self._by_site_kind.get((event.site, event.kind))
        return candidates.matching(event) if candidates is not None else []


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
