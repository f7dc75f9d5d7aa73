"""The production topology on one machine, every part its own OS process on loopback. Behind
`scripts/stack up|down|status`; the fault tests (tests/integration/test_stack_faults.py)
drive the same `Stack`.

    up      Kafka broker (tests/kafka_broker.py)           127.0.0.1:19092 (controller 19093)
            ClickHouse server (tests/clickhouse_server.py) 127.0.0.1:19000 (HTTP 18123)
            clickport migrate, clickport kafka create-topics, clickport sites add demo.localhost
            clickport ingest x2        :8101 :8102
            clickport sessionizer x3   :8111 :8112 :8113  (one consumer group)
            clickport api              :8120              (query API and dashboard)
            the demo page              :8130              (a stand-in site; tracker from ingest-1)
            each service waited for until its /readyz answers 200
    down    the reverse order, one role at a time: SIGTERM, GRACE_SECONDS, then SIGKILL.
            The data stays (rm -rf the stack directory for a fresh start).
    status  each process up or down, with its /readyz; exit 0 when all are up and ready

Services run as `python -m services.cli ROLE --port P` with CLICKPORT_TRANSPORT=kafka,
CLICKPORT_STORE=clickhouse and the broker's and server's addresses. Other CLICKPORT_*
variables of the caller reach every service, except CLICKPORT_VISITOR_SALT_SECRET, which only
ingest gets (without one, a secret generated once into the stack directory).

Ports: STACK_HTTP_PORT (8100: ingest-N at +N, sessionizer-N at +10+N, api at +20, the demo
page at +30), STACK_KAFKA_PORT (19092, its controller +1), STACK_CLICKHOUSE_PORT (19000),
STACK_CLICKHOUSE_HTTP_PORT (18123): clear of `clickport dev` (8000), scripts/kafka (9092)
and scripts/clickhouse (9000, 8123). Directory STACK_DIR (.cache/stack): logs/NAME.log,
pids/NAME.pid, kafka/ (data, broker.log, broker.pid), clickhouse/ (data, server.log,
server.pid), demo-key.txt, visitor-salt.secret, stack.json (the ports in use). Needs the
project's venv (scripts/stack bootstraps it), Java 17+ and Maven (the broker's jars).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import pathlib
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import clickhouse_server
import kafka_broker

from services.core.settings import Settings
from services.embedded.demo import DEMO_DOMAIN

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / ".cache" / "stack"
LAYOUT = (("ingest", 2), ("sessionizer", 3), ("api", 1))  # start order; down reverses it
PORT_OFFSETS = {"ingest": 0, "sessionizer": 10, "api": 20, "demo": 30}
# Above ingest's 20 s drain and the sessionizer's 25 s flush-and-commit (docs/operations.md).
GRACE_SECONDS = 30.0
READY_SECONDS = 120.0
DATABASE = "clickport"
SALT_VAR = "CLICKPORT_VISITOR_SALT_SECRET"
Say = Callable[[str], None]


def free_port() -> int:
    return kafka_broker.free_port()


def _is_our_process(pid: int, marker: bytes) -> bool:
    """A running, not zombie, process whose command line holds `marker` (Linux /proc): a
    stale pid file or a reused pid is never signalled."""
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z" and marker in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False


def running_pid(proc: subprocess.Popen[bytes] | None, pid_path: pathlib.Path,
                marker: bytes) -> int | None:
    """The pid of a running process: `proc` when this invocation started it, else the one
    `pid_path` names (an earlier `scripts/stack up` started it)."""
    if proc is not None:
        return proc.pid if proc.poll() is None else None
    try:
        pid = int(pid_path.read_text())
    except (OSError, ValueError):
        return None
    return pid if _is_our_process(pid, marker) else None


@dataclass(frozen=True)
class Ports:
    http: int | None = 8100  # the services' base port; None: each on a free port (tests)
    kafka: int = 19092
    kafka_controller: int = 19093
    clickhouse: int = 19000
    clickhouse_http: int = 18123

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Ports:
        kafka = int(env.get("STACK_KAFKA_PORT", "19092"))
        return cls(int(env.get("STACK_HTTP_PORT", "8100")), kafka, kafka + 1,
                   int(env.get("STACK_CLICKHOUSE_PORT", "19000")),
                   int(env.get("STACK_CLICKHOUSE_HTTP_PORT", "18123")))

    @classmethod
    def free(cls) -> Ports:
        return cls(None, free_port(), free_port(), free_port(), free_port())

    def service(self, name: str) -> int:
        if self.http is None:
            return free_port()
        role, _, number = name.partition("-")
        return self.http + PORT_OFFSETS[role] + int(number or 0)


class Service:
    """One service process on 127.0.0.1:`port`: output appended to logs/NAME.log, pid in
    pids/NAME.pid, found again by that file from another invocation."""

    def __init__(self, name: str, port: int, argv: list[str], env: dict[str, str],
                 root: pathlib.Path, detach: bool, ready_path: str = "/readyz") -> None:
        self.name, self.port, self.argv, self.env = name, port, argv, env
        self.detach, self.ready_path = detach, ready_path
        self.log_path = root / "logs" / f"{name}.log"
        self.pid_path = root / "pids" / f"{name}.pid"
        self.marker = "\0".join(argv[1:]).encode()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def role(self) -> str:
        return self.name.partition("-")[0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=self.detach)
        self.pid_path.write_text(str(self.proc.pid))
        if not self.detach:
            _LIVE.add(self)
        return self

    def pid(self) -> int | None:
        return running_pid(self.proc, self.pid_path, self.marker)

    def readiness(self) -> tuple[int, str]:
        """(HTTP status of the readiness path, its body); status 0 when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=5) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except OSError as exc:
            return 0, str(exc)

    def wait_ready(self, timeout: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.pid() is None:
                raise RuntimeError(f"{self.name} exited; the end of {self.log_path}:\n"
                                   f"{self.tail()}")
            status, body = self.readiness()
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s ({status} "
                                   f"{body[:300]}); the end of {self.log_path}:\n{self.tail()}")
            time.sleep(0.2)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: no drain, no flush, no commit (fault tests)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self.forget()

    def forget(self) -> None:
        """After the process has ended: reap it if it is our child, drop its pid file."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.pid_path.unlink(missing_ok=True)
        _LIVE.discard(self)


def stop_services(services: list[Service], grace: float = GRACE_SECONDS,
                  say: Say = print) -> None:
    """SIGTERM all of them at once, SIGKILL whichever is still running after `grace`."""
    running = [(s, pid) for s in services if (pid := s.pid()) is not None]
    for _, pid in running:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for service, pid in running:
        while service.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if service.pid() is not None:
            os.kill(pid, signal.SIGKILL)
            say(f"{service.name:<14} did not stop in {grace:.0f}s: killed")
        else:
            say(f"{service.name:<14} stopped")
        service.forget()


_LIVE: set[Service] = set()  # attached services, stopped at interpreter exit
atexit.register(lambda: stop_services(list(_LIVE), 10.0, lambda line: None))


class Backing:
    """The broker or the ClickHouse server: started by its own module; found again by its
    pid file when another invocation started it."""

    def __init__(self, name: str, server: kafka_broker.LocalBroker |
                 clickhouse_server.LocalClickHouse, pid_file: str, marker: bytes,
                 answers: Callable[[], bool], address: str) -> None:
        self.name, self.server, self.marker = name, server, marker
        self.pid_path = server.workdir / pid_file
        self.answers, self.address = answers, address

    def pid(self) -> int | None:
        return running_pid(self.server.proc, self.pid_path, self.marker)

    def ensure(self, say: Say) -> None:
        """Start it unless it runs already; either way, wait until it answers."""
        started = time.monotonic()
        if self.pid() is None:
            self.server.start()
            say(f"{self.name:<14} up    {self.address:<28} pid {self.pid()} "
                f"({time.monotonic() - started:.1f}s, log {_shown(self.server.log_path)})")
            return
        while not self.answers():
            if self.pid() is None or time.monotonic() - started > READY_SECONDS:
                raise RuntimeError(f"{self.name} runs (pid file {self.pid_path}) but does not "
                                   f"answer on {self.address}")
            time.sleep(0.2)
        say(f"{self.name:<14} up    {self.address:<28} pid {self.pid()} (already running)")

    def stop(self, grace: float, say: Say) -> None:
        if self.server.proc is not None:  # ours: the module's own stop reaps it
            self.server.stop(grace)
        elif (pid := self.pid()) is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.pid() is not None:
                os.kill(pid, signal.SIGKILL)
            self.pid_path.unlink(missing_ok=True)
        say(f"{self.name:<14} stopped")


@dataclass(frozen=True)
class Recorded:
    """What stack.json keeps: the ports in use and every service started."""

    ports: Ports
    services: dict[str, int]


class Stack:
    def __init__(self, root: pathlib.Path = DEFAULT_DIR, ports: Ports | None = None, *,
                 detach: bool = False, env: Mapping[str, str] | None = None,
                 services: Mapping[str, int] | None = None) -> None:
        self.root, self.detach = pathlib.Path(root), detach
        self.ports = ports or Ports.from_env()
        self.extra_env = dict(env or {})
        self.broker = kafka_broker.LocalBroker(
            kafka_broker.DEFAULT_LIBS, self.root / "kafka", self.ports.kafka,
            self.ports.kafka_controller, detach=detach)
        self.clickhouse = clickhouse_server.LocalClickHouse(
            self.root / "clickhouse", self.ports.clickhouse, self.ports.clickhouse_http,
            detach=detach)
        self.backing = [
            Backing("kafka", self.broker, "broker.pid", b"kafka.Kafka",
                    lambda: kafka_broker.broker_ready(self.ports.kafka), self.broker.bootstrap),
            Backing("clickhouse", self.clickhouse, "server.pid", b"clickhouse_server.py",
                    lambda: clickhouse_server.server_ready(self.ports.clickhouse,
                                                           self.ports.clickhouse_http),
                    f"127.0.0.1:{self.ports.clickhouse} (http {self.ports.clickhouse_http})"),
        ]
        self.settings = Settings.from_env(self.env_for("api"))
        self.services: dict[str, Service] = {}
        for name, port in (services or {}).items():
            self._service(name, port)

    @classmethod
    def open(cls, root: pathlib.Path = DEFAULT_DIR, *, detach: bool = True,
             renew: bool = False) -> Stack:
        """The stack recorded in `root` (stack.json). With `renew` (for `up`), a stack of
        which nothing runs takes its ports from the environment again."""
        state = root / "stack.json"
        if state.is_file():
            saved = json.loads(state.read_text())
            recorded = cls(root, Ports(**saved["ports"]), detach=detach,
                           services=saved["services"])
            if not renew or any(part.pid() is not None for part in recorded.parts()):
                return recorded
        return cls(root, detach=detach)

    # -- what runs where ---------------------------------------------------------------

    @property
    def clickhouse_url(self) -> str:
        return self.clickhouse.url(DATABASE)

    @property
    def topic(self) -> str:
        return self.settings.kafka_topic

    @property
    def group(self) -> str:
        return self.settings.kafka_group

    def env_for(self, role: str) -> dict[str, str]:
        env = {k: v for k, v in {**os.environ, **self.extra_env}.items() if k != SALT_VAR}
        env.update(PYTHONUNBUFFERED="1", CLICKPORT_TRANSPORT="kafka",
                   CLICKPORT_STORE="clickhouse", CLICKPORT_HOST="127.0.0.1",
                   CLICKPORT_KAFKA_BOOTSTRAP=self.broker.bootstrap,
                   CLICKPORT_CLICKHOUSE_URL=self.clickhouse_url,
                   CLICKPORT_DATA_DIR=str(self.root / "data"))  # unused on ClickHouse
        if role == "ingest":
            env[SALT_VAR] = self._salt_secret()
        return env

    def _salt_secret(self) -> str:
        given = self.extra_env.get(SALT_VAR) or os.environ.get(SALT_VAR)
        if given:
            return given
        path = self.root / "visitor-salt.secret"
        if not path.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _service(self, name: str, port: int) -> Service:
        role = name.partition("-")[0]
        if role == "demo":
            ingest, api = self.services["ingest-1"], self.services["api"]
            argv = [sys.executable, str(pathlib.Path(__file__).resolve()), "serve-demo",
                    str(port), f"{ingest.url}/js/clickport.js", f"{api.url}/dashboard"]
            service = Service(name, port, argv, dict(os.environ), self.root, self.detach,
                              "/demo")
        else:
            argv = [sys.executable, "-m", "services.cli", role, "--port", str(port)]
            service = Service(name, port, argv, self.env_for(role), self.root, self.detach)
        self.services[name] = service
        return service

    def of(self, role: str) -> list[Service]:
        return [s for s in self.services.values() if s.role == role]

    def running(self, role: str) -> list[Service]:
        return [s for s in self.of(role) if s.pid() is not None]

    def parts(self) -> list[Backing | Service]:
        return [*self.backing, *self.services.values()]

    def _save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        recorded = Recorded(self.ports, {n: s.port for n, s in self.services.items()})
        (self.root / "stack.json").write_text(json.dumps(asdict(recorded), indent=1) + "\n")

    # -- up, down, status ----------------------------------------------------------------

    def up(self, demo: bool = True, say: Say = print) -> str:
        """Start whatever is not running, in order; returns the demo site's API key."""
        self.root.mkdir(parents=True, exist_ok=True)
        kafka_broker.ensure_kafka_libs(self.broker.libs)
        for part in self.backing:
            part.ensure(say)
        say(self.clickport("migrate"))
        say(self.clickport("kafka", "create-topics"))
        key = self.demo_key()
        wanted = [f"{role}-{n}" if count > 1 else role
                  for role, count in LAYOUT for n in range(1, count + 1)]
        if demo:
            wanted.append("demo")
        for name in wanted:
            if name not in self.services:
                self._service(name, self.ports.service(name))
        self._save()
        self.start_missing([self.services[n] for n in wanted], say)
        return key

    def start_missing(self, services: list[Service], say: Say = print) -> None:
        """Start those of `services` that are not running (all at once), then wait for each
        one's readiness."""
        started = time.monotonic()
        fresh = [s.start() for s in services if s.pid() is None]
        for service in services:
            service.wait_ready()
            how = (f"({time.monotonic() - started:.1f}s)" if service in fresh
                   else "(already running)")
            say(f"{service.name:<14} ready {service.url:<28} pid {service.pid()} {how}")

    def add(self, role: str, say: Say = print) -> Service:
        """One more process of `role` (e.g. a fourth sessionizer), started and ready."""
        number = 1 + max((int(s.name.rpartition("-")[2]) for s in self.of(role)), default=0)
        name = f"{role}-{number}"
        service = self._service(name, self.ports.service(name))
        self._save()
        self.start_missing([service], say)
        return service

    def heal(self, say: Say = print) -> None:
        """Everything recorded running and ready again: the backing servers first, then any
        service process that has gone."""
        for part in self.backing:
            part.ensure(say)
        self.start_missing(list(self.services.values()), say)

    def down(self, say: Say = print, grace: float = GRACE_SECONDS) -> None:
        """Stop in the reverse order of `up`, one role at a time."""
        self.down_services(say, grace)
        for part in reversed(self.backing):
            part.stop(grace, say)

    def down_services(self, say: Say = print, grace: float = GRACE_SECONDS) -> None:
        """The services only, as `down` stops them; the broker and the ClickHouse server keep
        running (the benchmark counts what was stored after a graceful stop)."""
        for role in ["demo", *[role for role, _ in reversed(LAYOUT)]]:
            stop_services(self.of(role), grace, say)

    def status(self, say: Say = print) -> bool:
        healthy = True
        for part in self.backing:
            pid = part.pid()
            ok = pid is not None and part.answers()
            healthy &= ok
            say(f"{part.name:<14} {'up' if ok else 'down':<5} {part.address:<28} "
                f"pid {pid or '-'}")
        for service in self.services.values():
            pid = service.pid()
            status, body = service.readiness() if pid is not None else (0, "")
            healthy &= status == 200
            state = "up" if pid is not None else "down"
            shown = _squeeze(body) if service.ready_path == "/readyz" else ""
            ready = f"{service.ready_path} {status} {shown}" if pid is not None else ""
            say(f"{service.name:<14} {state:<5} {service.url:<28} pid {pid or '-'} {ready}")
        if self.backing[0].pid() is not None:
            try:
                group_state, members = consumer_group(self.broker.bootstrap, self.group)
                say(f"consumer group {self.group}: {group_state}, {members} member(s)")
            except Exception as exc:  # a report line, never a reason for status to fail
                say(f"consumer group {self.group}: unknown ({exc!r})")
        return healthy

    # -- one-shot commands and the demo site ---------------------------------------------

    def clickport(self, *args: str) -> str:
        """Run a one-shot `clickport` command against the stack; its output, or an error."""
        done = subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=REPO,
                              env=self.env_for("cli"), capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"clickport {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}")
        return f"clickport {' '.join(args)}: " + done.stdout.strip().replace("\n", "; ")

    def demo_key(self) -> str:
        """The demo site's API key: registered once, then kept in demo-key.txt (keys are
        stored hashed, so that file is the only copy)."""
        path = self.root / "demo-key.txt"
        if path.is_file():
            return path.read_text().strip()
        out = self.clickport("sites", "add", DEMO_DOMAIN)
        found = re.search(r"api key: (ck_\S+)", out)
        if found is None:
            raise RuntimeError(f"no key in the output of clickport sites add: {out}")
        path.write_text(found.group(1) + "\n")
        path.chmod(0o600)
        return found.group(1)

    def banner(self, key: str) -> str:
        ingest = self.of("ingest")
        api = self.services["api"]
        lines = [
            f"\nClickport runs as separate processes (Kafka + ClickHouse server), in "
            f"{_shown(self.root)}:",
            "  ingest:     " + "   ".join(f"{s.url}/api/event" for s in ingest),
            f"  dashboard:  {api.url}/dashboard#key={key}",
        ]
        if "demo" in self.services:
            lines.append(f"  demo page:  {self.services['demo'].url}/demo   (a stand-in site, "
                         f"{DEMO_DOMAIN}; its tracker comes from {ingest[0].name})")
        lines += [
            f"  tracker:    <script defer data-domain=\"{DEMO_DOMAIN}\" "
            f"src=\"{ingest[0].url}/js/clickport.js\"></script>",
            f"  API key:    {key}   (kept in {_shown(self.root / 'demo-key.txt')})",
            f"  try:        curl -H 'x-api-key: {key}' "
            f"'{api.url}/api/outbound-links?period=today'",
            f"  logs:       {_shown(self.root / 'logs')}/NAME.log, "
            f"{_shown(self.broker.log_path)}, {_shown(self.clickhouse.log_path)}",
            f"  pids:       {_shown(self.root / 'pids')}/NAME.pid, "
            f"{_shown(self.broker.workdir / 'broker.pid')}, "
            f"{_shown(self.clickhouse.workdir / 'server.pid')}",
            "  status:     scripts/stack status        stop: scripts/stack down",
        ]
        return "\n".join(lines)


def consumer_group(bootstrap: str, group: str) -> tuple[str, int]:
    """The group's state as its coordinator sees it ("Stable", "PreparingRebalance", ...,
    "Dead" when unknown) and its member count."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def describe() -> tuple[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            responses = await admin.describe_consumer_groups([group])
        finally:
            await admin.close()
        for response in responses:
            for described in response.groups:
                error, name, state, _protocol_type, _protocol, members = described[:6]
                if name == group:
                    return (state if error == 0 else f"error {error}"), len(members)
        return "Dead", 0

    return asyncio.run(describe())


def _squeeze(body: str, width: int = 110) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= width else flat[:width - 3] + "..."


def _shown(path: pathlib.Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path)


def _serve_demo(port: str, tracker: str, dashboard: str) -> int:
    """The demo page process: a site of its own whose tracker comes from ingest."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    from services.cli import UVICORN_OPTIONS
    from services.embedded.demo import demo_routes

    routes = [Route("/", lambda r: RedirectResponse("/demo", 302)),
              *demo_routes(tracker, dashboard)]
    uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=int(port), **UVICORN_OPTIONS)
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "serve-demo" and len(argv) == 4:
        return _serve_demo(*argv[1:])
    root = pathlib.Path(os.environ.get("STACK_DIR", DEFAULT_DIR))
    stack = Stack.open(root, detach=True, renew=command == "up")
    if command == "up":
        try:
            key = stack.up(say=lambda line: print(line, flush=True))
        except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
            print(f"stack: {exc}\nWhat started is still running: scripts/stack status, "
                  f"scripts/stack down.", file=sys.stderr)
            return 1
        print(stack.banner(key))
        return 0
    if command == "down":
        stack.down(say=lambda line: print(line, flush=True))
        return 0
    if command == "status":
        return 0 if stack.status() else 3
    print("usage: stack.py up|down|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
