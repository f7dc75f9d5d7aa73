"""The session table's cap: past it, the least recently touched sessions go, down to 90 %."""

from __future__ import annotations

from services.core.session import SessionState
from services.sessionizer.state import SessionTable


def state(sid: str) -> SessionState:
    return SessionState(site="s", sid=sid, offset=0, visitor_id=0, started_at=0,
                        last_event_at=0)


def test_past_the_cap_the_least_recently_touched_go_first_down_to_ninety_percent() -> None:
    table = SessionTable(idle_seconds=1800, max_in_memory=10)
    for n in range(11):  # three polls' worth of touch times: 1.0 x4, 2.0 x4, 3.0 x3
        table.put(("s", f"id{n}"), 0, state(f"id{n}"), 1.0 + n // 4)
    table.put(("s", "id0"), 0, state("id0"), 3.0)  # touched again: now among the newest
    assert table.over_cap()
    assert table.evict_least_recent() == 2  # 11 -> 9
    assert sorted(sid for _, sid in table.states) == sorted(
        f"id{n}" for n in range(11) if n not in (1, 2))
    assert not table.over_cap() and table.evict_least_recent() == 0
