"""What every benchmark shares: the size profile (quick or full), the `Figure` a benchmark
reports, robust summaries (median and min-max of N runs), progress output, and servers run
as child processes pinned to a core.

Core layout (the machine has two): the orchestrator and everything it starts run on core 0
(scripts/bench starts it under ``taskset -c 0``): the load generators, the Kafka broker, the
HTTP clients. The thing under test is started under ``taskset -c 1``, alone on its core, and
so is its baseline. Baselines are measured in the same run, interleaved with the figure.
"""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CLICKPORT = str(ROOT / ".venv" / "bin" / "clickport")
RESULTS = ROOT / "bench" / "results"
SERVER_CORE = "1"  # the stage under test
CLIENT_CORE = "0"  # load generators, broker, orchestrator
# uvicorn's options for the servers started with `python -m uvicorn`: those `clickport` runs
# its services with (services/cli.py), so the bare app runs as the product's servers do.
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log",
                 "--no-proxy-headers", "--log-level", "warning"]
_started = time.monotonic()


@dataclass(frozen=True)
class Profile:
    """Sizes of one run. ``quick`` is the smoke mode (tiny sizes, < 2 minutes in all)."""

    name: str
    rounds: int  # interleaved baseline/figure rounds per figure
    wrk_seconds: int
    wrk_connections: int
    sessionizer_events: int
    session_memory_count: int
    store_rows: int
    e2e_step_seconds: int
    e2e_confirm_seconds: int
    api_sizes: tuple[int, ...]
    api_requests: int
    tracker_clicks: int

    @property
    def quick(self) -> bool:
        return self.name == "quick"


QUICK = Profile("quick", rounds=1, wrk_seconds=2, wrk_connections=128, sessionizer_events=10_000,
                session_memory_count=20_000, store_rows=10_000, e2e_step_seconds=4,
                e2e_confirm_seconds=5, api_sizes=(100_000, 300_000), api_requests=8,
                tracker_clicks=300)
FULL = Profile("full", rounds=3, wrk_seconds=10, wrk_connections=256, sessionizer_events=200_000,
               session_memory_count=1_000_000, store_rows=200_000, e2e_step_seconds=20,
               e2e_confirm_seconds=60, api_sizes=(1_000_000, 10_000_000), api_requests=40,
               tracker_clicks=3000)


@dataclass
class Figure:
    """One measured figure: its runs, its baseline's runs (same run, interleaved), the ratio
    per round, and the target it is judged against."""

    id: str
    stage: str
    name: str
    unit: str
    runs: list[float]
    target: str  # human text, e.g. ">= 0.45 x bare"
    command: str
    baseline_name: str = ""
    baseline_runs: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    judge: str = ""  # "ratio>=X", "value<=X", "value>=X", "value==X", "" (no target)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float | None:
        return median(self.runs)

    @property
    def baseline(self) -> float | None:
        return median(self.baseline_runs)

    @property
    def ratio(self) -> float | None:
        return median(self.ratios)

    @property
    def passed(self) -> bool | None:
        if not self.judge or not self.runs:
            return None
        what, op, limit = _parse_judge(self.judge)
        have = self.ratio if what == "ratio" else self.value
        if have is None:
            return None
        return {">=": have >= limit, "<=": have <= limit, "==": have == limit,
                "<": have < limit}[op]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(value=self.value, baseline=self.baseline, ratio=self.ratio,
                    passed=self.passed)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})


def _parse_judge(judge: str) -> tuple[str, str, float]:
    for op in (">=", "<=", "==", "<"):
        if op in judge:
            what, limit = judge.split(op)
            return what.strip(), op, float(limit)
    raise ValueError(f"bad judge {judge!r}")


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of ``values``; 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(q * len(ordered))) - 1)]


def paired_ratios(figure: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Ratio per interleaved round (figure_i / baseline_i): pairs share the machine's state."""
    return [f / b for f, b in zip(figure, baseline, strict=False) if b]


def say(message: str) -> None:
    """Progress, with the time since the run started."""
    elapsed = time.monotonic() - _started
    print(f"[bench {elapsed:6.1f}s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: str, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", core, *argv]


class Server:
    """A child process serving HTTP on loopback, pinned to a core; stopped with SIGINT (a
    graceful uvicorn shutdown), then SIGKILL if it lingers. Only this child is signalled."""

    def __init__(self, name: str, argv: Sequence[str], port: int, *, env: dict[str, str],
                 log_dir: pathlib.Path, ready_path: str = "/", core: str = SERVER_CORE) -> None:
        self.name = name
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        self.log_path = log_dir / f"{name}.log"
        self._argv = pinned(core, argv)
        self._env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> Server:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes it for its life
        self.proc = subprocess.Popen(self._argv, env=self._env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=ROOT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.tail()}")
            try:
                if httpx.get(self.base + self.ready_path, timeout=2).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{self.name} not ready after {timeout}s: {self.tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        if self.proc is None:
            return 0.0
        return cpu_seconds(self.proc.pid)

    def peak_rss_mb(self) -> float:
        """The server process's peak resident memory so far (the kernel's VmHWM), in MB."""
        if self.proc is None:
            return 0.0
        status = pathlib.Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(kb) / 1024

    def get_json(self, path: str, **kw: Any) -> Any:
        return httpx.get(self.base + path, timeout=30, **kw).json()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 40.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_json(argv: Sequence[str], *, core: str = SERVER_CORE, timeout: float = 1800,
             env: dict[str, str] | None = None) -> Any:
    """Run a bench helper in a child process pinned to ``core``; its last stdout line is
    JSON. Its stderr (progress) is passed through."""
    import orjson

    proc = subprocess.run(pinned(core, argv), stdout=subprocess.PIPE, stderr=None,
                          timeout=timeout, cwd=ROOT, env=env or child_env())
    out = proc.stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not out:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {out[-10:]}")
    return orjson.loads(out[-1])


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKPORT_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + str(ROOT / "tests")
    env.update(extra)
    return env


def wait_until(check: Any, seconds: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(every)


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def load_average() -> str:
    try:
        return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def python_child(module: str, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args]


def machine() -> dict[str, str]:
    import platform

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": sys.version.split()[0],
            "platform": platform.platform(), "loadavg_at_start": load_average()}


class Context:
    """What a benchmark gets from the orchestrator: the size profile, a scratch directory
    (data dirs, server logs), and the Kafka broker, started on first use and shared."""

    def __init__(self, profile: Profile, workdir: pathlib.Path) -> None:
        self.profile = profile
        self.workdir = workdir
        self._broker: Any = None

    def command(self, only: str) -> str:
        return f"scripts/bench --only {only}" + (" --quick" if self.profile.quick else "")

    def scratch(self, name: str) -> pathlib.Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def broker(self) -> Any:
        if self._broker is None:
            from bench.kafka import start_broker

            self._broker = start_broker()
        return self._broker

    def close(self) -> None:
        if self._broker is not None:
            self._broker.close()
            self._broker = None
