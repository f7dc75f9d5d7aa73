"""Readiness as named problems: every service's ``/readyz`` is 200 when it has none and 503
with their names (``"problems": [...]``) and what each is about (``"problem_details"``)
otherwise; ``/metrics`` has the same as gauges, ``clickport_ready`` and
``clickport_ready_problem{problem=...}`` (1 while that problem holds)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from services.core.metrics import gauge


@dataclass(frozen=True)
class Problem:
    name: str  # stable, for alerts and scripts: e.g. ``store_unwritable``
    detail: Any  # for a person: a sentence, or a small JSON object


def problems_body(problems: Sequence[Problem]) -> dict[str, Any]:
    return {"problems": [p.name for p in problems],
            "problem_details": {p.name: p.detail for p in problems}}


def readiness_metrics(problems: Sequence[Problem], names: Iterable[str]) -> list[Metric]:
    """The gauges, with a series for every problem in ``names`` (0 while it does not hold)."""
    found = {p.name for p in problems}
    return [gauge("clickport_ready", "1 when /readyz answers 200 (no problem)", float(not found)),
            gauge("clickport_ready_problem", "1 while /readyz names this problem", 0,
                  {name: float(name in found) for name in {*names, *found}}, "problem")]
