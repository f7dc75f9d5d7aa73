"""A real single-node Apache Kafka 4.1 broker (KRaft) from Maven jars: no Docker, no tarball.

    libs = ensure_kafka_libs()          # mvn copy of deploy/kafka/pom.xml into .cache/kafka-libs
    broker = start_local_broker(libs)   # temp data dir, free ports; waits until metadata answers
    broker.bootstrap                    # "127.0.0.1:PORT"
    broker.kill(); broker.restart()     # fault tests: same port, same data dir, offsets kept
    broker.stop()                       # SIGTERM, then SIGKILL after a grace period
    broker.close()                      # stop, and delete the temp dir (also: `with broker:`)

Recipe: `kafka.tools.StorageTool format --ignore-formatted` on a rendered
deploy/kafka/server.properties.template (static one-voter quorum, so no --standalone), then
`java -cp 'libs/*' kafka.Kafka server.properties` with deploy/kafka/log4j2.properties.
Topics are not auto-created: create them with the admin client. Needs `java` (17+) and, for
the first fetch only, `mvn` with access to Maven Central. The broker's output goes to
<workdir>/broker.log. Also used by scripts/kafka (python3 tests/kafka_broker.py start|stop|status).
"""

from __future__ import annotations

import atexit
import base64
import fcntl
import hashlib
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy" / "kafka"
DEFAULT_LIBS = REPO / ".cache" / "kafka-libs"
JVM_FLAGS = ["-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
             "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"]


def ensure_kafka_libs(dest: pathlib.Path = DEFAULT_LIBS) -> pathlib.Path:
    """Fetch the broker jars with Maven once; later calls only compare the pom's hash."""
    pom = DEPLOY / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    stamp = dest / ".pom-sha256"
    if stamp.is_file() and stamp.read_text() == digest:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers fetch once
        if stamp.is_file() and stamp.read_text() == digest:
            return dest
        if shutil.which("mvn") is None:
            raise RuntimeError("mvn not found: install Maven to fetch the Kafka broker jars")
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
        try:
            mvn = subprocess.run(["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
                                  f"-DoutputDirectory={tmp}"], capture_output=True, timeout=600)
            if mvn.returncode != 0:
                out = (mvn.stdout + mvn.stderr).decode(errors="replace")[-3000:]
                raise RuntimeError(f"fetching the Kafka jars with Maven failed:\n{out}")
            tmp.chmod(0o755)
            (tmp / ".pom-sha256").write_text(digest)
            shutil.rmtree(dest, ignore_errors=True)
            tmp.rename(dest)  # all or nothing: an interrupted fetch leaves no half directory
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(port: int, api_key: int, version: int, body: bytes) -> bytes:
    """One request/response on a fresh connection (request header v1); returns the body."""
    client = b"clickport-probe"
    req = struct.pack(">hhih", api_key, version, 7, len(client)) + client + body
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        resp = b""
        while len(resp) < 4 or len(resp) < 4 + struct.unpack_from(">i", resp)[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            resp += chunk
    if struct.unpack_from(">i", resp, 4)[0] != 7:
        raise ConnectionError("bad correlation id")
    return resp[8:]


def broker_ready(port: int) -> bool:
    """True once the broker serves metadata and its group coordinator has loaded.

    Metadata v1 must list a broker and a controller. Then FindCoordinator v1 and OffsetFetch
    v3 for a probe group must succeed: that creates __consumer_offsets on a new broker and,
    after a restart, waits out COORDINATOR_LOAD_IN_PROGRESS, which aiokafka 0.14 would
    otherwise read as "no committed offset" (it ignores OffsetFetch's top-level error).
    """
    group = b"clickport-probe"
    try:
        md = _call(port, 3, 1, struct.pack(">i", -1))  # all topics
        (nbrokers,) = struct.unpack_from(">i", md, 0)
        pos = 4
        for _ in range(nbrokers):  # node_id, host, port, rack (nullable string)
            pos += 4
            pos += 2 + struct.unpack_from(">h", md, pos)[0] + 4
            pos += 2 + max(struct.unpack_from(">h", md, pos)[0], 0)
        if nbrokers < 1 or struct.unpack_from(">i", md, pos)[0] < 0:
            return False
        fc = _call(port, 10, 1, struct.pack(">h", len(group)) + group + b"\x00")
        if struct.unpack_from(">h", fc, 4)[0] != 0:  # after throttle_time_ms
            return False
        of = _call(port, 9, 3, struct.pack(">h", len(group)) + group + struct.pack(">i", -1))
        ntopics, error = struct.unpack_from(">ih", of, 4)
        return ntopics == 0 and error == 0
    except (OSError, struct.error):
        return False


_LIVE: set[LocalBroker] = set()  # attached brokers, closed at interpreter exit
atexit.register(lambda: [b.close() for b in list(_LIVE)])


class LocalBroker:
    def __init__(self, libs: pathlib.Path, workdir: pathlib.Path, port: int,
                 controller_port: int, owns_workdir: bool = False, detach: bool = False) -> None:
        self.libs, self.workdir, self.port = pathlib.Path(libs), pathlib.Path(workdir), port
        self.controller_port, self.owns_workdir, self.detach = controller_port, owns_workdir, detach
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", *JVM_FLAGS, f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.workdir / 'logs'}", "-cp", f"{self.libs}/*", main, *args]

    def start(self, timeout: float = 90.0) -> LocalBroker:
        """Format the data dir if new, launch the JVM, wait until it serves metadata."""
        props = self.workdir / "server.properties"
        self.workdir.mkdir(parents=True, exist_ok=True)
        props.write_text((DEPLOY / "server.properties.template").read_text().format(
            port=self.port, controller_port=self.controller_port, data_dir=self.workdir / "data"))
        if not (self.workdir / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            # "=" form: an id that starts with "-" (1 in 64) would be read as an option
            fmt = subprocess.run(self._java("kafka.tools.StorageTool", "format",
                                            f"--cluster-id={cluster_id}",
                                            "-c", str(props), "--ignore-formatted"),
                                 capture_output=True, timeout=120)
            if fmt.returncode != 0:
                out = (fmt.stdout + fmt.stderr).decode(errors="replace")[-3000:]
                raise RuntimeError(f"kafka.tools.StorageTool format failed:\n{out}")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self._java("kafka.Kafka", str(props)), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=self.detach)
        (self.workdir / "broker.pid").write_text(str(self.proc.pid))
        if not self.detach:
            _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.proc.returncode}: {self.tail()}")
            if broker_ready(self.port):
                return self
            time.sleep(0.2)
        self.kill()
        raise TimeoutError(f"Kafka not ready on {self.port} after {timeout}s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        """The end of broker.log without stack frames, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no broker.log)"
        return "\n".join([ln for ln in text if not ln.startswith("\t")][-lines:])

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
        """Crash the broker (SIGKILL): no clean shutdown, for fault tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._forget()

    def _forget(self) -> None:
        (self.workdir / "broker.pid").unlink(missing_ok=True)
        _LIVE.discard(self)

    def restart(self, timeout: float = 90.0) -> LocalBroker:
        """Stop if running, then start again on the same port and data dir."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop, and remove the work dir if start_local_broker created it."""
        self.stop()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_local_broker(libs: pathlib.Path, workdir: pathlib.Path | None = None,
                       port: int | None = None, controller_port: int | None = None,
                       timeout: float = 90.0, detach: bool = False) -> LocalBroker:
    """Start a broker; without workdir it uses a fresh temp dir that close() removes.

    Unless `detach`, the JVM shares our session (Ctrl-C reaches it) and is closed at exit.
    """
    owns = workdir is None
    work = pathlib.Path(tempfile.mkdtemp(prefix="kafka-broker-")) if owns else workdir
    broker = LocalBroker(libs, work, port or free_port(), controller_port or free_port(),
                         owns, detach)
    return broker.start(timeout)


def _alive(pid: int) -> bool:
    """A running, not zombie, kafka.Kafka JVM (Linux /proc): no stale pid file, no pid reuse."""
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z" and b"kafka.Kafka" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False


def _cli(argv: list[str]) -> int:
    """`start|stop|status` of a background broker on 127.0.0.1:9092 (for scripts/kafka), and
    `ensure-libs` (scripts/test fetches the jars before the suite starts)."""
    cmd = argv[0] if argv else "status"
    if cmd == "ensure-libs":
        print(f"kafka jars in {ensure_kafka_libs()}")
        return 0
    work = pathlib.Path(os.environ.get("KAFKA_DATA", REPO / ".cache" / "kafka-data"))
    port = int(os.environ.get("KAFKA_PORT", "9092"))
    pidfile = work / "broker.pid"
    pid = int(pidfile.read_text()) if pidfile.is_file() else None
    if pid is not None and not _alive(pid):
        pidfile.unlink()
        pid = None
    if cmd == "status":
        ok = pid is not None and broker_ready(port)
        print(f"kafka {'up' if ok else 'down'} on 127.0.0.1:{port} (pid {pid}, data {work})")
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
        print("kafka stopped")
        return 0
    if cmd == "start":
        if pid is not None:
            print(f"kafka already running (pid {pid}) on 127.0.0.1:{port}")
            return 0
        t0 = time.monotonic()
        cport = int(os.environ.get("KAFKA_CONTROLLER_PORT", port + 1))
        try:
            broker = start_local_broker(ensure_kafka_libs(), work, port, cport, detach=True)
        except (RuntimeError, TimeoutError) as exc:
            print(f"kafka failed to start: {exc}", file=sys.stderr)
            return 1
        print(f"kafka up on {broker.bootstrap} in {time.monotonic() - t0:.1f}s "
              f"(pid {broker.proc and broker.proc.pid}, log {broker.log_path})")
        return 0
    print("usage: kafka_broker.py start|stop|status|ensure-libs", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
