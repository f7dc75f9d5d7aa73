"""clickport dev puts chDB's own threads behind the event loop (services/embedded/
engine_priority.py): every thread Python did not start gets nice 10, Python's keep theirs."""

from __future__ import annotations

import os
import pathlib
import sys
import threading

import pytest

from services.adapters.chdb_store import ChdbStore
from services.embedded.engine_priority import ENGINE_NICE, lower_engine_threads

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="per-thread nice values are Linux's")


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_the_engines_threads_are_lowered_and_pythons_are_not(tmp_path: pathlib.Path) -> None:
    store = ChdbStore(tmp_path / "chdb")  # starts the engine's thread pools
    store.migrate()
    ready, release = threading.Event(), threading.Event()
    helper = threading.Thread(target=lambda: (ready.set(), release.wait(10)))
    helper.start()
    ready.wait(10)
    try:
        python_niceness = {t.native_id: nice_of(t.native_id) for t in threading.enumerate()}
        done: set[int] = set()
        lower_engine_threads(done)  # (an earlier test may have lowered some already)
        alive = {int(p.name) for p in pathlib.Path("/proc/self/task").iterdir()}
        assert done & alive and not done & set(python_niceness)
        assert all(nice_of(tid) >= ENGINE_NICE for tid in done & alive)
        assert {tid: nice_of(tid) for tid in python_niceness} == python_niceness
        before = set(done)
        again = lower_engine_threads(done)  # a rescan lowers only threads new since
        assert again <= len(done - before)
    finally:
        release.set()
        helper.join()
        store.close()
