"""`RepeatedLog`: the first occurrence of a cause at once, then one summary line per interval
with the count; quiet causes start again; more causes than it tracks share one line."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.core.repeated_log import RepeatedLog

log = logging.getLogger("clickport.test.repeated")


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == log.name]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_without_a_loop_the_next_occurrence_after_the_interval_writes_the_count(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    clock = Clock()
    repeated = RepeatedLog(log, "answering 503: %s", clock=clock)
    for _ in range(500):
        repeated.report("queue full")
        clock.now += 0.01  # 5 s
    repeated.report("disk full")
    assert messages(caplog) == ["answering 503: queue full", "answering 503: disk full"]
    clock.now += 6
    repeated.report("queue full")
    assert messages(caplog)[2:] == ["answering 503: queue full (500 more in the last 11 s)"]
    clock.now += 30  # quiet for longer than the interval: the next one is logged at once
    repeated.report("queue full")
    repeated.report("disk full")
    assert messages(caplog)[3:] == ["answering 503: queue full", "answering 503: disk full"]


def test_on_a_loop_the_summary_comes_when_the_interval_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    async def burst() -> None:
        repeated = RepeatedLog(log, "answering 503: %s", interval=0.2)
        for _ in range(100):
            repeated.report("queue full")
        for _ in range(50):  # bounded: the timer fires after 0.2 s
            if len(messages(caplog)) == 2:
                break
            await asyncio.sleep(0.05)

    asyncio.run(burst())
    assert messages(caplog) == ["answering 503: queue full",
                                "answering 503: queue full (99 more in the last 0 s)"]


def test_only_the_first_line_carries_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    clock = Clock()
    repeated = RepeatedLog(log, "unexpected error in %s", level=logging.ERROR, clock=clock)
    for _ in range(3):
        try:
            raise KeyError("boom")
        except KeyError as exc:
            repeated.report("GET /api/x: KeyError", exc_info=exc)
        clock.now += 6
    records = [r for r in caplog.records if r.name == log.name]
    assert [r.exc_info is not None for r in records] == [True, False]
    assert records[1].getMessage() == "unexpected error in GET /api/x: KeyError " \
                                      "(2 more in the last 12 s)"


def test_causes_past_the_cap_share_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    clock = Clock()
    repeated = RepeatedLog(log, "query failed: %s", max_causes=4, clock=clock)
    for i in range(1000):  # every cause different (an error text holding a query id)
        repeated.report(f"timeout of query {i}")
    clock.now += 10
    repeated.report("timeout of query 1000")
    lines = messages(caplog)
    assert lines[:5] == [*(f"query failed: timeout of query {i}" for i in range(5))]
    assert lines[5:] == ["query failed: other causes (995 more in the last 10 s)",
                         "query failed: timeout of query 1000"]
    assert len(repeated._windows) <= 5
