"""A real ClickHouse server for the benchmarks (tests/clickhouse_server.py: chDB's LocalServer
serving the native and HTTP protocols on loopback, a data dir in the bench scratch space),
pinned to one core, every thread of it. Each stage that uses one says which core and why
(bench/README.md)."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from bench.common import ROOT, say


def pin_process(pid: int, core: str) -> None:
    """Every thread of ``pid`` on ``core`` (``taskset -a``); threads it starts later inherit
    the affinity of the thread that starts them."""
    subprocess.run(["taskset", "-a", "-p", "-c", core, str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


def allowed_cores(pid: int) -> set[str]:
    """The cores the threads of ``pid`` may run on, as the kernel lists them."""
    found = set()
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    found.add(line.split(":", 1)[1].strip())
    return found


@contextlib.contextmanager
def local_server(workdir: pathlib.Path, core: str) -> Iterator[Any]:
    """A ClickHouse server with its data in ``workdir``, on ``core``; stopped on exit."""
    sys.path.insert(0, str(ROOT / "tests"))
    import clickhouse_server

    server = clickhouse_server.start_local_server(workdir=workdir)
    try:
        assert server.proc is not None
        pin_process(server.proc.pid, core)
        if allowed_cores(server.proc.pid) != {core}:
            raise RuntimeError(f"ClickHouse server not pinned to core {core}: "
                               f"{allowed_cores(server.proc.pid)}")
        say(f"ClickHouse server (pid {server.proc.pid}) ready on 127.0.0.1:{server.tcp_port}, "
            f"pinned to core {core}")
        yield server
    finally:
        server.close()


def drop_database(server: Any, database: str) -> None:
    """Drop a round's database (and wait for it), so its background merges cannot run
    during a later round."""
    from services.adapters.clickhouse_store import ClickHouseStore

    store = ClickHouseStore(server.url("default"))
    try:
        store.query(f"DROP DATABASE IF EXISTS {database} SYNC")
    finally:
        store.close()


def server_pid(server: Any) -> int:
    assert server.proc is not None
    return int(server.proc.pid)

