"""A/B of `ClickHouseStore.insert` versions, interleaved in one process: what a change to
services/adapters/clickhouse_store.py does to the sessionizer's writes (not a stage of
``scripts/bench``).

    python -m bench.clickhouse_insert_ab 5e8afa9 HEAD            # git revisions
    python -m bench.clickhouse_insert_ab HEAD /tmp/clickhouse_store.py --rounds 11

Each version is the adapter's file at a revision (``git show REV:path``) or a file, imported
as a module of its own, writing into its own database of one ClickHouse server (pinned to
core 0, as in benchmark 2a); this process pins itself to core 1. The batches are the
sessionizer's: N realistic events (default 20,000, its batch cap) applied to session state
with the 20 goals of benchmark 2a, as an `EventBatch`, then the sessions they touched as a
`SessionBatch`, each insert with a deduplication token. Per round every version writes the
round's batch pair; the first round is a warm-up. Per version: wall time, this thread's CPU
time and the server's CPU time (/proc/PID/stat), per event, as median and min-max over the
rounds; then a checksum of every stored row, which must be the same for every version.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import shutil
import statistics
import subprocess
import tempfile
import time
from typing import Any

from bench.clickhouse import local_server, server_pid
from bench.common import CLIENT_CORE, ROOT, SERVER_CORE, cpu_seconds, say

ADAPTER = "services/adapters/clickhouse_store.py"
EVENTS_SUM = ("SELECT count() AS n, sum(cityHash64(event_id, timestamp, name, session_id, url, "
              "path, meta_keys, meta_values, goals, first_click_at, is_first_click, "
              "click_domain, utm_term, country, visitor_id, scroll_depth)) AS h FROM events")
SESSIONS_SUM = ("SELECT count() AS n, sum(cityHash64(session_id, version, started_at, "
                "last_event_at, clicked_domains, clicked_first_at, goals, entry_page, "
                "exit_page, utm_source, has_converted, last_offset)) AS h FROM sessions")


def load_version(spec: str, scratch: pathlib.Path, index: int) -> Any:
    """The module of one adapter version: a file, or the adapter at a git revision."""
    path = pathlib.Path(spec)
    if not path.is_file():
        path = scratch / f"clickhouse_store_{index}.py"
        path.write_bytes(subprocess.run(["git", "show", f"{spec}:{ADAPTER}"], cwd=ROOT,
                                        check=True, capture_output=True).stdout)
    found = importlib.util.spec_from_file_location(f"clickhouse_store_v{index}", path)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def batches(events: int, rounds: int) -> list[tuple[Any, Any]]:
    from bench.sessionizer_throughput import goal_rows
    from bench.workload import SITE
    from bench.workload import events as generate
    from services.core.goals import GoalIndex, goal_from_row
    from services.core.rows import EventBatch, SessionBatch
    from services.core.session import apply_event, first_click

    goals = GoalIndex([goal_from_row(row) for row in goal_rows(SITE)])
    states: dict[tuple[str, str], Any] = {}
    out = []
    generated = list(generate(events * rounds))
    for r in range(rounds):
        event_batch, session_batch = EventBatch(), SessionBatch()
        for offset, event in enumerate(generated[r * events:(r + 1) * events],
                                       start=r * events):
            key = (event.site, event.sid)
            before = states.get(key)
            state, converted = apply_event(before, event, offset, goals)
            states[key] = state
            event_batch.add(event, converted, first_click(before, state, event))
            session_batch.put(key, state)
        out.append((event_batch, session_batch))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="+", help="git revisions or adapter files")
    parser.add_argument("--events", type=int, default=20_000, help="events per batch")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, the first a warm-up")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(SERVER_CORE)})  # before any thread starts: all inherit it
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="clickhouse-ab-"))
    try:
        measure(args.versions, [load_version(v, scratch, i) for i, v in
                                enumerate(args.versions)], scratch, args.events,
                args.rounds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(versions: list[str], modules: list[Any], scratch: pathlib.Path, events: int,
            rounds: int) -> None:
    from services.sessionizer.worker import fewer_gc_passes

    work = batches(events, rounds)
    with local_server(scratch / "server", CLIENT_CORE) as server:
        pid = server_pid(server)
        stores = []
        for i, module in enumerate(modules):
            store = module.ClickHouseStore(server.url(f"ab_{i}"))
            store.migrate()
            stores.append(store)
        runs: list[list[tuple[float, float, float]]] = [[] for _ in stores]
        with fewer_gc_passes():  # as in the sessionizer, whose process runs the inserts
            for r, (event_batch, session_batch) in enumerate(work):
                for i, store in enumerate(stores):
                    server_before, cpu_before = cpu_seconds(pid), time.thread_time()
                    started = time.perf_counter()
                    store.insert("events", event_batch, dedup_token=f"e{r}")
                    store.insert("sessions", session_batch, dedup_token=f"s{r}")
                    wall = time.perf_counter() - started
                    cpu, server_cpu = time.thread_time() - cpu_before, cpu_seconds(pid)
                    if r:
                        per_event = events / 1e6
                        runs[i].append((wall / per_event, cpu / per_event,
                                        (server_cpu - server_before) / per_event))
        say(f"{events:,} events and their sessions per round, {rounds - 1} rounds "
            f"after a warm-up; microseconds per event, median (min-max):")
        for version, measured in zip(versions, runs, strict=True):
            columns = zip(*measured, strict=True)
            say(f"  {version}: " + "; ".join(
                f"{what} {statistics.median(c):.2f} ({min(c):.2f}-{max(c):.2f})"
                for what, c in zip(("wall", "client CPU", "server CPU"), columns, strict=True)))
        sums = {v: (s.query(EVENTS_SUM)[0], s.query(SESSIONS_SUM)[0])
                for v, s in zip(versions, stores, strict=True)}
        same = len({repr(x) for x in sums.values()}) == 1
        say(f"stored rows {'identical' if same else 'DIFFER'} across versions: "
            f"{next(iter(sums.values()))}")
        for store in stores:
            store.close()


if __name__ == "__main__":
    main()
