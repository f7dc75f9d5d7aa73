"""The sessionizer's session table is bounded, and evicting from it changes nothing stored.

Found in the issue: the in-memory table only evicted idle sessions (30 minutes untouched), so
45,000 sessions active within the half hour took 67 MB, and nothing capped it. Now past
``CLICKPORT_SESSIONS_MAX_IN_MEMORY`` the worker flushes its open batch and then evicts the
least recently touched sessions. Here the cap is 20 with 60 interleaved sessions, and the
batch timer long enough that the cap is crossed while a batch is open: every session is
evicted and reloaded several times, some of them with events in the open batch. The stored
sessions must still equal the fault-free fold, each event stored once, and the table never
holds more than the cap once a poll is handled.
"""

from __future__ import annotations

import pathlib

import pytest
from helpers import metric_value

from .session_fold import beacons, fold, stored_sessions
from .support import EmbeddedRun, wait_for

CAP, SESSIONS = 20, 60
pytestmark = pytest.mark.timeout(120)


def test_sessions_evicted_past_the_cap_reload_into_the_fault_free_fold(
        tmp_path: pathlib.Path) -> None:
    plan = beacons(SESSIONS, prefix="capped")  # each session's first event, then the seconds...
    with EmbeddedRun(tmp_path / "data", sessions_max_in_memory=CAP,
                     batch_max_seconds=1.0) as run:
        sessionizer = run.parts.sessionizer
        for beacon in plan[:SESSIONS]:  # 60 new sessions, posted faster than a batch timer
            assert run.post_json(beacon).status_code == 202
        assert wait_for(lambda: sessionizer.stats.consumed == SESSIONS
                        and len(sessionizer.sessions.states) <= CAP)
        for beacon in plan[SESSIONS:]:  # more events, mostly on evicted sessions
            assert run.post_json(beacon).status_code == 202
        assert run.wait_until_stored(len(plan))
        assert wait_for(lambda: len(sessionizer.sessions.states) <= CAP)

        # Every session was in memory and at most CAP are: the rest were evicted past the
        # cap (nothing is idle for 30 minutes here), and those seen again were reloaded.
        evicted = sessionizer.stats.sessions_evicted
        assert evicted["cap"] >= SESSIONS - CAP and evicted["idle"] == 0, evicted
        assert sessionizer.stats.sessions_reloaded >= SESSIONS - CAP
        assert stored_sessions(run.store) == fold(run.store, run.parts.transport.stream)
        rows = run.store.query("SELECT count() AS n, uniqExact(event_id) AS ids FROM events")[0]
        assert int(rows["n"]) == int(rows["ids"]) == len(plan)
        metrics = run.client.get("/metrics").text.replace('{reason="cap"}', "")
        assert metric_value(metrics, "clickport_sessionizer_sessions_evicted_total") == (
            evicted["cap"])
