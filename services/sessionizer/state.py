"""In-memory session state for the partitions this worker owns, reloaded from the Store on a
miss (after idle eviction, a restart or a rebalance) so a session is never restarted."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.core.rows import SESSION_COLUMNS_FOR_RELOAD, session_from_row
from services.core.session import SessionState
from services.core.store import Store

SessionKey = tuple[str, str]  # (site, session id)
_RELOAD_CHUNK = 200


@dataclass
class SessionTable:
    idle_seconds: float
    states: dict[SessionKey, SessionState] = field(default_factory=dict)
    partition_of: dict[SessionKey, int] = field(default_factory=dict)
    touched_at: dict[SessionKey, float] = field(default_factory=dict)

    def get(self, key: SessionKey) -> SessionState | None:
        return self.states.get(key)

    def put(self, key: SessionKey, partition: int, state: SessionState) -> None:
        self.states[key] = state
        self.partition_of[key] = partition
        self.touched_at[key] = time.monotonic()

    def missing(self, keys: Iterable[SessionKey]) -> set[SessionKey]:
        return {key for key in keys if key not in self.states}

    def drop_partitions(self, partitions: frozenset[int]) -> None:
        for key in [k for k, p in self.partition_of.items() if p in partitions]:
            self._forget(key)

    def evict_idle(self) -> int:
        limit = time.monotonic() - self.idle_seconds
        stale = [key for key, at in self.touched_at.items() if at < limit]
        for key in stale:
            self._forget(key)
        return len(stale)

    def _forget(self, key: SessionKey) -> None:
        self.states.pop(key, None)
        self.partition_of.pop(key, None)
        self.touched_at.pop(key, None)


def load_sessions(store: Store, keys: Iterable[SessionKey]) -> dict[SessionKey, SessionState]:
    """The latest stored state of each session that has one (blocking; run in a thread)."""
    wanted = sorted(set(keys))
    found: dict[SessionKey, SessionState] = {}
    for start in range(0, len(wanted), _RELOAD_CHUNK):
        chunk = wanted[start : start + _RELOAD_CHUNK]
        params: dict[str, str] = {}
        tuples = []
        for i, (site, sid) in enumerate(chunk):
            params[f"s{i}"], params[f"i{i}"] = site, sid
            tuples.append(f"({{s{i}:String}}, {{i{i}:String}})")
        rows = store.query(
            f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL "
            f"WHERE (site_id, session_id) IN ({', '.join(tuples)})",
            params,
        )
        for row in rows:
            state = session_from_row(row)
            found[(state.site, state.sid)] = state
    return found
