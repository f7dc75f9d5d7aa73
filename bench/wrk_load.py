"""Driving ``wrk`` (Debian's package; installed here when missing) with bench/post_event.lua:
closed-loop maximum-rate runs and paced constant-rate runs, each returning a `WrkResult`.

wrk runs on the client core (core 0) with one thread per server it loads (one, except the
end to end on separate processes, which spreads its load over two ingest processes): on
this machine one wrk thread sustains well over what one server core answers (checked
against the bare ASGI app, see bench/README.md), so the load generator is not the
bottleneck of the ratios.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from bench.common import CLIENT_CORE, pinned, say
from bench.workload import DESKTOP_UA

SCRIPT = pathlib.Path(__file__).with_name("post_event.lua")


def ensure_wrk() -> str:
    """The wrk binary; installs Debian's package when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError("wrk is missing: apt-get install -y wrk (Debian's package)")
    say("installing wrk (apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env,
                   capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get install wrk did not provide a wrk binary")
    return found


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rate: float  # requests answered per second
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    errors: int  # socket errors + timeouts
    non_2xx: int  # wrk's "Non-2xx or 3xx responses"
    n2xx: int  # only when statuses were counted
    n5xx: int
    n4xx: int

    def brief(self) -> str:
        return (f"{self.rate:,.0f} req/s, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
                f"errors {self.errors}, non-2xx {self.non_2xx}")


class BodyFile:
    """Request bodies written once to a temp file for the Lua script."""

    def __init__(self, bodies: list[bytes]) -> None:
        handle = tempfile.NamedTemporaryFile("wb", prefix="bench-bodies-", suffix=".txt",
                                             delete=False)
        with handle:
            for body in bodies:
                if b"\n" in body:
                    raise ValueError("a body must be one line")
                handle.write(body + b"\n")
        self.path = pathlib.Path(handle.name)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def run_wrk(base_url: str, bodies: BodyFile, *, seconds: int, connections: int,
            rate: float = 0, count_status: bool = False, timeout_s: int = 10,
            also: Sequence[str] = ()) -> WrkResult:
    """One wrk run against ``base_url``/api/event. ``rate`` > 0 paces sends (open schedule).

    ``also``: more servers' base URLs to spread the load over, one wrk thread per server
    (``BENCH_HOSTS`` in post_event.lua), each with ``connections`` / threads connections and
    an equal share of ``rate``; the result totals all of them, latency percentiles included.
    """
    wrk = ensure_wrk()
    targets = [base_url, *also]
    env = {**os.environ, "BENCH_BODIES": str(bodies.path), "BENCH_UA": DESKTOP_UA,
           "BENCH_RATE": str(rate / len(targets)), "BENCH_COUNT": "1" if count_status else "0"}
    if also:
        env["BENCH_HOSTS"] = ",".join(urllib.parse.urlsplit(t).netloc for t in targets)
    argv = pinned(CLIENT_CORE, [wrk, f"-t{len(targets)}", f"-c{connections}", f"-d{seconds}s",
                                f"--timeout={timeout_s}s", "-s", str(SCRIPT), "--latency",
                                base_url + "/api/event"])
    proc = subprocess.run(argv, env=env, capture_output=True, timeout=seconds + 120)
    text = proc.stdout.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text[-2000:]} "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
    d = orjson.loads(line.removeprefix("BENCH_JSON "))
    secs = d["duration_us"] / 1e6
    return WrkResult(
        requests=d["requests"], seconds=secs, rate=d["requests"] / secs,
        p50_ms=d["p50_us"] / 1000, p90_ms=d["p90_us"] / 1000, p99_ms=d["p99_us"] / 1000,
        p999_ms=d["p999_us"] / 1000,
        errors=d["err_connect"] + d["err_read"] + d["err_write"] + d["err_timeout"],
        non_2xx=d["err_status"], n2xx=d["n2xx"], n5xx=d["n5xx"], n4xx=d["n4xx"])
