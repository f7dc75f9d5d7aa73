"""In-memory session state for the partitions this worker owns, reloaded from the Store on a
miss (after an eviction, a restart or a rebalance) so a session is never restarted.

Two evictions bound the table: sessions untouched for ``idle_seconds`` (`evict_idle`), and,
past ``max_in_memory`` sessions, the least recently touched down to `EVICT_TO` of it
(`evict_least_recent`). Either is safe only for sessions whose newest state is in the Store:
the worker calls both right after a flush (services/sessionizer/worker.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from services.core.rows import SESSION_COLUMNS_FOR_RELOAD, session_from_row
from services.core.session import SessionState
from services.core.store import Store

SessionKey = tuple[str, str]  # (site, session id)
_RELOAD_CHUNK = 10_000
# Past the cap, evict down to this share of it: one eviction (and the flush before it) per
# tenth of the cap of new sessions, not one per poll.
EVICT_TO = 0.9
DEFAULT_MAX_IN_MEMORY = 200_000


class _Entry(msgspec.Struct, gc=False):
    """One session in memory, updated in place: one small object per session instead of an
    entry in each of three dicts (no cycles through it, so the GC need not track it)."""

    state: SessionState
    partition: int
    touched_at: float  # time.monotonic(); one float shared by a whole poll's sessions


@dataclass
class SessionTable:
    idle_seconds: float
    max_in_memory: int = DEFAULT_MAX_IN_MEMORY
    states: dict[SessionKey, _Entry] = field(default_factory=dict)
    _next_sweep: float = field(default=0.0, init=False, repr=False)

    def get(self, key: SessionKey) -> SessionState | None:
        entry = self.states.get(key)
        return entry.state if entry is not None else None

    def put(self, key: SessionKey, partition: int, state: SessionState, now: float) -> None:
        entry = self.states.get(key)
        if entry is None:
            self.states[key] = _Entry(state, partition, now)
        else:
            entry.state, entry.partition, entry.touched_at = state, partition, now

    def missing(self, keys: Iterable[SessionKey]) -> set[SessionKey]:
        return {key for key in keys if key not in self.states}

    def clear(self) -> None:
        self.states.clear()
        self._next_sweep = 0.0

    def forget(self, keys: Iterable[SessionKey]) -> None:
        """Drop these sessions (they reload from the Store when next seen)."""
        for key in keys:
            self.states.pop(key, None)

    def drop_partitions(self, partitions: frozenset[int]) -> None:
        for key in [k for k, e in self.states.items() if e.partition in partitions]:
            del self.states[key]

    def evict_idle(self, now: float) -> int:
        """Forget the sessions untouched for ``idle_seconds``. The sweep reads every session,
        so it runs at most once per tenth of ``idle_seconds``, not after every batch: an idle
        session may stay in memory up to 10 % longer."""
        if now < self._next_sweep:
            return 0
        self._next_sweep = now + self.idle_seconds / 10
        limit = now - self.idle_seconds
        stale = [key for key, entry in self.states.items() if entry.touched_at < limit]
        for key in stale:
            del self.states[key]
        return len(stale)


    def over_cap(self) -> bool:
        return len(self.states) > self.max_in_memory

    def evict_least_recent(self) -> int:
        """Forget the least recently touched sessions down to `EVICT_TO` of the cap; returns
        how many. A poll's sessions share one touch time, so there are few distinct times:
        counted, they give the newest time that goes; among the sessions touched then, the
        ones first put in go first."""
        excess = len(self.states) - int(self.max_in_memory * EVICT_TO)
        if excess <= 0:
            return 0
        counts = Counter(entry.touched_at for entry in self.states.values())
        cut, older = 0.0, 0  # the newest time that goes; how many were touched before it
        for touched in sorted(counts):
            if older + counts[touched] >= excess:
                cut = touched
                break
            older += counts[touched]
        stale = [key for key, entry in self.states.items() if entry.touched_at < cut]
        stale += [key for key, entry in self.states.items()
                  if entry.touched_at == cut][:excess - older]
        for key in stale:
            del self.states[key]
        return len(stale)


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


# session_starts (migration 007, sorted by id) gives each known session's start day first,
# so the sessions read touches one day of the key per session, and a batch of new sessions
# (the usual case) reads nothing there at all. On the 10 M bench set, for 1,000 ids (half
# new): 18 ms against 130 ms probing every day's bloom filter.
_KNOWN_STARTS = ("(toDate(started_at), session_id) IN (SELECT toDate(started_at), session_id "
                 "FROM session_starts WHERE site_id = {{site:String}} AND session_id IN ({ids}))")
_RELOAD_BY_IDS = (
    f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL WHERE site_id = {{site:String}} "
    "AND " + _KNOWN_STARTS.format(ids="SELECT arrayJoin(splitByChar(',', {ids:String}))")
)
_RELOAD_ONE = (
    f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL WHERE site_id = {{site:String}} "
    "AND " + _KNOWN_STARTS.format(ids="{id:String}")
)


def stored_watermark(store: Store, stream: int) -> int:
    """The highest offset of ``stream`` that any stored session has applied (-1: none). A
    transport whose next offset is at or below it would hand out offsets already seen."""
    rows = store.query("SELECT max(last_offset) AS offset, count() AS n FROM sessions "
                       "WHERE last_stream = {stream:UInt32}", {"stream": stream})
    return int(rows[0]["offset"]) if rows and int(rows[0]["n"]) else -1


def _collect(found: dict[SessionKey, SessionState], rows: list[dict[str, object]]) -> None:
    for row in rows:
        state = session_from_row(row)
        found[(state.site, state.sid)] = state
