"""A real ClickHouse server from PyPI's chDB: no Docker, no clickhouse binary.

    server = start_local_server()       # temp work dir, free ports; waits until it answers
    server.url("clickport_test")        # "clickhouse://default:@127.0.0.1:PORT/clickport_test"
    server.kill(); server.start()       # fault tests: same ports, same data dir
    server.stop()                       # SIGTERM, then SIGKILL after a grace period
    server.close()                      # stop, and delete the temp dir (also: `with server:`)

Recipe: chDB's module-level ``chdb._chdb.query`` runs ClickHouse's ``LocalServer`` (the code
of ``clickhouse-local``), which opens the native-protocol and HTTP listeners on
``SYSTEM START LISTEN TCP|HTTP``. It reads ports and the listen address from ``config.xml``
in its working directory, and serves only while that one call runs, so the call ends in a
query that never returns (a sleep over ``system.numbers``). One process per data directory;
user ``default`` with no password, so it listens on 127.0.0.1 only. Needs the project's own
Python packages (chdb); the server's output goes to <workdir>/server.log. Also used by
scripts/clickhouse (python tests/clickhouse_server.py start|stop|status).
"""

from __future__ import annotations

import atexit
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]

CONFIG = """<clickhouse>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <logger><level>warning</level><console>1</console></logger>
</clickhouse>
"""
# The call's last query must not end: the listeners close when it returns. sleepEachRow
# inside an aggregate (count() would be optimised away), one row per block, no sleep cap.
SERVE = ("SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; "
         "SELECT max(sleepEachRow(1)) FROM system.numbers "
         "SETTINGS function_sleep_max_microseconds_per_block = 0, max_block_size = 1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_ready(tcp_port: int, http_port: int) -> bool:
    """True once HTTP answers ``/ping`` and the native port accepts a connection."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ping", timeout=2) as r:
            if r.read().strip() != b"Ok.":
                return False
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=2):
            return True
    except OSError:
        return False


_LIVE: set[LocalClickHouse] = set()  # attached servers, closed at interpreter exit
atexit.register(lambda: [s.close() for s in list(_LIVE)])


class LocalClickHouse:
    def __init__(self, workdir: pathlib.Path, tcp_port: int, http_port: int,
                 owns_workdir: bool = False, detach: bool = False) -> None:
        self.workdir, self.tcp_port, self.http_port = pathlib.Path(workdir), tcp_port, http_port
        self.owns_workdir, self.detach = owns_workdir, detach
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "server.log"

    def url(self, database: str = "default") -> str:
        return f"clickhouse://default:@127.0.0.1:{self.tcp_port}/{database}"

    def start(self, timeout: float = 60.0) -> LocalClickHouse:
        """Write config.xml, launch the server process, wait until both listeners answer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config.xml").write_text(
            CONFIG.format(tcp_port=self.tcp_port, http_port=self.http_port))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(pathlib.Path(__file__).resolve()), "serve"],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=self.detach)
        (self.workdir / "server.pid").write_text(str(self.proc.pid))
        if not self.detach:
            _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ClickHouse exited with {self.proc.returncode}: "
                                   f"{self.tail()}")
            if server_ready(self.tcp_port, self.http_port):
                return self
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"ClickHouse not ready on {self.tcp_port} after {timeout}s: "
                           f"{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server.log)"

    def stop(self, grace: float = 30.0) -> None:
        """Clean shutdown (SIGTERM); SIGKILL if it has not exited after `grace` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._forget()

    def kill(self) -> None:
        """Crash the server (SIGKILL): no clean shutdown, for fault tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._forget()

    def _forget(self) -> None:
        (self.workdir / "server.pid").unlink(missing_ok=True)
        _LIVE.discard(self)

    def restart(self, timeout: float = 60.0) -> LocalClickHouse:
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop, and remove the work dir if start_local_server created it."""
        self.stop()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalClickHouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_local_server(workdir: pathlib.Path | None = None, tcp_port: int | None = None,
                       http_port: int | None = None, timeout: float = 60.0,
                       detach: bool = False) -> LocalClickHouse:
    """Start a server; without workdir it uses a fresh temp dir that close() removes.

    Unless `detach`, the server shares our session (Ctrl-C reaches it) and is closed at exit.
    """
    owns = workdir is None
    work = pathlib.Path(tempfile.mkdtemp(prefix="clickhouse-server-")) if owns else workdir
    server = LocalClickHouse(work, tcp_port or free_port(), http_port or free_port(), owns,
                             detach)
    return server.start(timeout)


def _serve() -> int:
    """The server process itself (cwd = its work dir, which holds config.xml)."""
    import chdb._chdb as engine

    # SIGTERM would otherwise kill the process mid-write; as SystemExit... the engine call
    # cannot be interrupted from Python, so let the default handler end the process.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    engine.query(SERVE, "TabSeparated", path=str(pathlib.Path.cwd() / "data"))
    return 0


def _alive(pid: int) -> bool:
    """A running, not zombie, server of ours (Linux /proc): no stale pid file, no pid reuse."""
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z" and b"clickhouse_server.py" in pathlib.Path(
            f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False


def _cli(argv: list[str]) -> int:
    """`start|stop|status` of a background server on 127.0.0.1:9000/8123 (scripts/clickhouse),
    and `serve` (the server process itself)."""
    cmd = argv[0] if argv else "status"
    if cmd == "serve":
        return _serve()
    work = pathlib.Path(os.environ.get("CLICKHOUSE_DATA", REPO / ".cache" / "clickhouse-data"))
    tcp_port = int(os.environ.get("CLICKHOUSE_PORT", "9000"))
    http_port = int(os.environ.get("CLICKHOUSE_HTTP_PORT", "8123"))
    pidfile = work / "server.pid"
    pid = int(pidfile.read_text()) if pidfile.is_file() else None
    if pid is not None and not _alive(pid):
        pidfile.unlink()
        pid = None
    if cmd == "status":
        ok = pid is not None and server_ready(tcp_port, http_port)
        print(f"clickhouse {'up' if ok else 'down'} on 127.0.0.1:{tcp_port} "
              f"(http {http_port}, pid {pid}, data {work})")
        return 0 if ok else 3
    if cmd == "stop":
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            pidfile.unlink(missing_ok=True)
        print("clickhouse stopped")
        return 0
    if cmd == "start":
        if pid is not None:
            print(f"clickhouse already running (pid {pid}) on 127.0.0.1:{tcp_port}")
            return 0
        t0 = time.monotonic()
        try:
            server = start_local_server(work, tcp_port, http_port, detach=True)
        except (RuntimeError, TimeoutError) as exc:
            print(f"clickhouse failed to start: {exc}", file=sys.stderr)
            return 1
        print(f"clickhouse up on 127.0.0.1:{tcp_port} (http {http_port}) in "
              f"{time.monotonic() - t0:.1f}s (pid {server.proc and server.proc.pid}, "
              f"url {server.url('clickport')}, log {server.log_path})")
        return 0
    print("usage: clickhouse_server.py start|stop|status|serve", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
