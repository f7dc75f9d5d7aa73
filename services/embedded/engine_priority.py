"""``clickport dev`` runs ingest's event loop and the embedded ClickHouse engine (chDB) in one
process. The engine's own threads (merges, insert and query pipelines) stay runnable for tens
of milliseconds at a time, and on a small machine they took the core from the event loop
while beacons waited: with the loop and chDB on one core at 3,000 beacons/s, the loop was
runnable but not running for 40-180 ms at a time, mostly beside a MergeMutate thread, and the
p99 answer time was 32-261 ms (bench/ANALYSIS.md, section 1). Those threads get a lower
priority (nice 10) here, so the loop runs first; they still have every cycle it leaves idle.

Linux only: there each thread has its own nice value and /proc/self/task lists them.
Elsewhere this does nothing. Lowering a priority needs no privilege.
"""

from __future__ import annotations

import os
import pathlib
import threading

ENGINE_NICE = 10
RESCAN_SECONDS = 5.0  # the engine's pools start threads as they grow
_TASKS = pathlib.Path("/proc/self/task")


def lower_engine_threads(done: set[int]) -> int:
    """Give every thread of this process that Python did not start, and that is not in
    ``done`` yet, at least `ENGINE_NICE`; ``done`` keeps the ids of the live ones seen.
    Returns how many were lowered now."""
    if not _TASKS.is_dir():
        return 0
    present = {int(entry.name) for entry in _TASKS.iterdir()}
    # Listed after /proc: a thread that Python is starting just now may be missed here and
    # lowered; that only makes it wait behind the loop too.
    python_threads = {thread.native_id for thread in threading.enumerate()}
    done &= present  # forget threads that have ended (their ids can be reused)
    lowered = 0
    for tid in sorted(present - done - python_threads):
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < ENGINE_NICE:
                os.setpriority(os.PRIO_PROCESS, tid, ENGINE_NICE)
                lowered += 1
        except OSError:  # it ended meanwhile
            continue
        done.add(tid)
    return lowered
