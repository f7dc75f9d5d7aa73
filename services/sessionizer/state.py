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
_RELOAD_CHUNK = 10_000


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
    """The latest stored state of each session that has one (blocking; run in a thread).

    One query per site and chunk, the ids passed as one comma-joined parameter: binding
    thousands of ``(site, id)`` tuple parameters cost about 90 us per key in chDB, the
    joined string about 3 us. Ingest only accepts ids of ``A-Za-z0-9_-``, so a comma cannot
    occur; an id that has one anyway is looked up on its own."""
    by_site: dict[str, list[str]] = {}
    for site, sid in set(keys):
        by_site.setdefault(site, []).append(sid)
    found: dict[SessionKey, SessionState] = {}
    for site, sids in by_site.items():
        plain = sorted(sid for sid in sids if "," not in sid)
        odd = [sid for sid in sids if "," in sid]
        for start in range(0, len(plain), _RELOAD_CHUNK):
            ids = ",".join(plain[start : start + _RELOAD_CHUNK])
            _collect(found, store.query(_RELOAD_BY_IDS, {"site": site, "ids": ids}))
        for sid in odd:
            _collect(found, store.query(_RELOAD_ONE, {"site": site, "id": sid}))
    return found


_RELOAD_BY_IDS = (
    f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL WHERE site_id = {{site:String}} "
    "AND session_id IN (SELECT arrayJoin(splitByChar(',', {ids:String})))"
)
_RELOAD_ONE = (
    f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL WHERE site_id = {{site:String}} "
    "AND session_id = {id:String}"
)


def _collect(found: dict[SessionKey, SessionState], rows: list[dict[str, object]]) -> None:
    for row in rows:
        state = session_from_row(row)
        found[(state.site, state.sid)] = state
