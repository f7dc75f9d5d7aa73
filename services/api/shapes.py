"""The query API's response and request bodies as msgspec structs (STYLE.md 2). Handlers
build these and encode them; `services.api.openapi` derives its schemas from the same
structs, so the document cannot drift from what the API sends."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from services.core.goals import Field, GoalType, Operator

GoalName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
ConditionValue = Annotated[str, msgspec.Meta(max_length=500)]
MAX_CONDITIONS = 20
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso_ms(ms: int) -> str:
    """Integer milliseconds since the epoch as ISO 8601 UTC: ``2026-03-10T15:00:00.123Z``."""
    instant = _EPOCH + dt.timedelta(milliseconds=ms)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso(instant: dt.datetime) -> str:
    return iso_ms((instant - _EPOCH) // dt.timedelta(milliseconds=1))


class Error(msgspec.Struct, omit_defaults=True):
    error: str
    field: str | None = None


class OutboundDomain(msgspec.Struct):
    domain: str  # in ASCII: an internationalised domain in punycode (xn--)
    clicks: int
    unique_clicks: int
    example_url: str
    example_text: str
    idn: bool  # the domain has a punycode label
    unicode: str  # its Unicode form (the domain itself when not idn)
    mixed_script: bool  # a label mixes scripts (UTS 39 highly restrictive): a look-alike
    confusable: bool  # a label is all letters that look like ASCII ones, in another script


class OutboundUrl(msgspec.Struct):
    url: str
    domain: str
    clicks: int
    unique_clicks: int
    example_url: str
    example_text: str
    idn: bool  # of the domain, as in OutboundDomain
    unicode: str
    mixed_script: bool
    confusable: bool


class OutboundDomains(msgspec.Struct):
    site: str
    results: list[OutboundDomain]


class OutboundUrls(msgspec.Struct):
    site: str
    results: list[OutboundUrl]


class GoalRef(msgspec.Struct):
    id: str
    name: str  # "" when the goal's row is gone
    is_conversion: bool = True


class SessionRow(msgspec.Struct):
    session_id: str
    started_at: str  # ISO 8601, UTC
    entry_page: str
    exit_page: str
    pageviews: int
    duration: int  # seconds of visible time (S4)
    country: str
    device: str
    browser: str
    os: str
    source: str
    has_clicked: bool
    has_converted: bool
    is_bounce: bool
    goals: list[GoalRef]


class SessionPage(msgspec.Struct):
    site: str
    results: list[SessionRow]
    next_cursor: str | None


class PageviewDetail(msgspec.Struct):
    path: str
    url: str


class ClickDetail(msgspec.Struct):
    url: str
    text: str
    asin: str
    kind: str
    domain: str
    page: str  # path of the page the click was on


class EngagementDetail(msgspec.Struct):
    path: str
    scroll: int  # max scroll depth on the page, %
    visible_ms: int  # visible time since the page's previous engagement beacon


class CustomDetail(msgspec.Struct):
    name: str
    props: dict[str, str]
    path: str


class TimelineEvent(msgspec.Struct, tag_field="kind"):
    event_id: str
    time: str  # ISO 8601, UTC
    goals: list[GoalRef]  # conversion goals this event converted


class PageviewEvent(TimelineEvent, tag="pageview"):
    detail: PageviewDetail


class ClickEvent(TimelineEvent, tag="click"):
    detail: ClickDetail


class EngagementEvent(TimelineEvent, tag="engagement"):
    detail: EngagementDetail


class CustomEvent(TimelineEvent, tag="custom"):
    detail: CustomDetail


AnyEvent = PageviewEvent | ClickEvent | EngagementEvent | CustomEvent


class Timeline(msgspec.Struct):
    site: str
    session: SessionRow
    results: list[AnyEvent]
    truncated: bool  # more events than the API returns for one session


class Kpis(msgspec.Struct):
    visitors: int
    sessions: int
    pageviews: int
    views_per_visit: float
    bounce_rate: float
    conversions: int
    conversion_rate: float
    avg_duration: int
    avg_scroll: int


class Range(msgspec.Struct):
    start: str  # inclusive, ISO 8601 UTC
    end: str  # exclusive


class KpiReport(msgspec.Struct):
    site: str
    period: Range
    previous_period: Range
    results: Kpis
    previous: Kpis


class Condition(msgspec.Struct, forbid_unknown_fields=True):
    field: Field
    operator: Operator
    value: ConditionValue = ""


class GoalInput(msgspec.Struct, forbid_unknown_fields=True):
    """The body of POST /api/goals and PUT /api/goals/{goal_id}."""

    name: GoalName
    type: GoalType
    conditions: Annotated[list[Condition], msgspec.Meta(max_length=MAX_CONDITIONS)] = []
    logic: Literal["all", "any"] = "all"
    is_conversion: bool = True


class Goal(msgspec.Struct):
    id: str
    name: str
    type: GoalType
    conditions: list[Condition]
    logic: Literal["all", "any"]
    is_conversion: bool
    created_at: str  # ISO 8601, UTC


class GoalList(msgspec.Struct):
    site: str
    results: list[Goal]


class Deleted(msgspec.Struct):
    id: str
    deleted: bool
