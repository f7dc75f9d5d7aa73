"""Benchmark 2b, sessionizer memory: resident bytes per active session in `SessionTable`.

A child process on core 1 builds M sessions the way the worker does: each session's first
two events (a pageview, then a click) are encoded as ingest publishes them, decoded from
the bytes (so every string is a fresh object, as after a Kafka poll), applied with
`apply_event` and `SessionTable.put` (keyed by the state's shared site string, one touch
time per 5,000 sessions as per poll). RSS (``/proc/self/statm``) is read before and after,
with the encoded bytes dropped as it goes; the figure is the RSS delta / M. Then the parts
of one typical session are sized with ``sys.getsizeof`` (the state struct, its strings,
the key tuple, the table's entry and dict slot; an object shared by many sessions counted
once) to say what dominates.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from typing import Any

from bench.common import PYTHON, Context, Figure, run_json, say


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def dict_entry_bytes(count: int) -> float:
    """Bytes per entry of a dict holding ``count`` (key, value) pairs (table + index)."""
    probe = {i: None for i in range(count)}
    return sys.getsizeof(probe) / count


SHAREABLE = ("site", "url", "path", "referrer", "source", "utm_source", "utm_medium",
             "utm_campaign", "device", "browser", "os", "country")


def child(count: int, intern: bool = False) -> dict[str, Any]:
    """``intern``: an experiment: every string field of each decoded event replaced by one
    shared copy (``sys.intern``) before it is applied, the key's site included."""
    import msgspec

    from bench.workload import event_of, session_id
    from services.core.event import decode_event, encode_event
    from services.core.session import SessionState, apply_event
    from services.sessionizer.state import SessionTable

    rng = random.Random(7)
    table = SessionTable(idle_seconds=1800)
    sids = [session_id(rng) for _ in range(count)]  # made before the baseline: not counted
    gc.collect()
    before = rss_bytes()
    offset = 0
    now = time.monotonic()
    for i, sid in enumerate(sids):
        vid = rng.getrandbits(63)
        state = None
        for step in (0, 1):  # pageview, then the click
            event = decode_event(encode_event(
                event_of(rng, sid, vid, step, i, 1_764_000_000_000 + i)))
            if intern:
                event = msgspec.structs.replace(event, **{
                    f: sys.intern(getattr(event, f)) for f in SHAREABLE})
            offset += 1
            state, _ = apply_event(state, event, offset)
        assert state is not None
        if i % 5000 == 0:  # the worker takes one touch time per poll
            now = time.monotonic()
        table.put((state.site, state.sid), i % 12, state, now)
    gc.collect()
    after = rss_bytes()
    entries = list(table.states.items())[:20_000]
    sample = [(key, entry.state) for key, entry in entries]
    seen: set[int] = set()

    def owned(values: list[Any]) -> float:
        """Bytes of the objects among ``values`` not already counted: an object shared by
        many sessions (an interned string) is counted once, so it amortises to ~0."""
        total = 0
        for value in values:
            if id(value) not in seen:
                seen.add(id(value))
                total += sys.getsizeof(value)
        return total / len(sample)

    fields = SessionState.__struct_fields__
    parts: dict[str, float] = {
        "SessionState struct": owned([st for _, st in sample]),
        "sid string": owned([st.sid for _, st in sample]),
        "key tuple (site, sid)": owned([k for k, _ in sample]),
        "key's site string (the state's, shared)": owned([k[0] for k, _ in sample]),
        "other strings of the state (site, pages, referrer, UTM, device...)": owned(
            [getattr(st, f) for _, st in sample for f in fields
             if isinstance(getattr(st, f), str)]),
        "ints (version, visitor_id, timestamps...)": owned(
            [getattr(st, f) for _, st in sample for f in fields
             if type(getattr(st, f)) is int]),
        "table entry (state, partition, touched_at)": owned([e for _, e in entries]),
        "touched_at float (one per poll)": owned([e.touched_at for _, e in entries]),
        "dict slot": dict_entry_bytes(count),
    }
    per_session = (after - before) / count
    return {"count": count, "rss_delta": after - before, "per_session": per_session,
            "parts": parts}


def run(ctx: Context) -> list[Figure]:
    m = ctx.profile.session_memory_count
    say(f"session memory: building {m:,} sessions in a SessionTable (child on core 1)")
    result = run_json([PYTHON, "-m", "bench.session_memory", "--count", str(m)])
    interned = run_json([PYTHON, "-m", "bench.session_memory", "--count", str(m), "--intern"])
    parts = result["parts"]
    biggest = sorted(parts.items(), key=lambda kv: -kv[1])
    say("session memory: " + ", ".join(f"{k} {v:.0f} B" for k, v in biggest))
    breakdown = "; ".join(f"{k}: {v:.0f} B" for k, v in biggest)
    return [Figure(
        id="memory.per_session", stage="2 sessionizer",
        name=f"resident memory per active session ({m:,} sessions in SessionTable)",
        unit="B/session", runs=[result["per_session"]], target="<= 1024 B",
        judge="value <= 1024", command=ctx.command("memory"),
        note=f"RSS delta / sessions; one typical session: {breakdown}",
        extra=result), Figure(
        id="memory.per_session_interned", stage="2 sessionizer",
        name="(experiment) the same, every string of each decoded event shared "
             "(the key's site too)",
        unit="B/session", runs=[interned["per_session"]], target="<= 1024 B",
        judge="value <= 1024", command=ctx.command("memory"),
            note="every string field of each decoded event shared (the key's site too), as "
             "an upper bound of what sharing strings can save", extra=interned)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--intern", action="store_true")
    args = parser.parse_args()
    print(json.dumps(child(args.count, args.intern)))
