"""Benchmark 4 (end to end) and 3b (inserts per table per second), on one machine:
``clickport dev`` (ingest, disk queue, sessionizer, chDB in one process) on core 1, wrk on
core 0 offering a constant rate of realistic session traffic (pageview, click, engagement,
pageview, click per session).

1. A closed-loop run gives the most the process answers, X.
2. A bisection between 0.1 X and 1.25 X (steps of ``e2e_step_seconds``) finds the highest rate
   whose queue lag stays bounded: every request answered 2xx at >= 97 % of the offered
   rate, and the queue's pending count, sampled each second from /readyz, stays under
   max(5,000, 2 s of traffic) in the step's second half without growing (`search`, shared
   with bench/pipeline_kafka.py and bench/pipeline_stack.py).
3. That rate is held for ``e2e_confirm_seconds`` (60 s in the full profile); if it fails,
   the next 15 % lower rate is held. During this run the sessionizer's INSERT count
   (``/readyz``) gives inserts per table per second, and its ``last_batch_delay_seconds``,
   sampled with it, the freshness: for each batch, ingest's receipt of its oldest event to
   the batch being in chDB (the worst case of the batch's events).
4. After the queue drains, the process is stopped (it flushes and commits) and the events
   in chDB are counted: stored / (events answered 202, ingest's own count) must be
   exactly 1.000, with as many distinct event ids as rows. wrk's count of 2xx it read is
   reported beside it (lower: requests in flight when a run ends are answered but unread).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    CLICKPORT,
    PYTHON,
    Context,
    Figure,
    Profile,
    Server,
    child_env,
    free_port,
    percentile,
    say,
    wait_until,
)
from bench.ingest_load import PRODUCT_ENV, add_site
from bench.workload import SITE, session_bodies
from bench.wrk_load import BodyFile, WrkResult, run_wrk
from services.core.settings import Settings

BATCH_SECONDS = Settings().batch_max_seconds  # clickport dev runs with the defaults
# What a run stored: rows as the dashboard reads them (FINAL) and distinct event ids.
STORED_SQL = ("SELECT count() AS n, uniqExact(event_id) AS ids FROM events FINAL "
              "WHERE site_id = {s:String}")


@dataclass
class Step:
    rate: float
    seconds: int
    wrk: WrkResult
    pending: list[int] = field(default_factory=list)
    inserts: int = 0
    batch_delays: list[float] = field(default_factory=list)  # seconds, one per batch seen

    @property
    def bound(self) -> float:
        return max(5000.0, 2.0 * self.rate)

    @property
    def bounded(self) -> bool:
        half = self.pending[len(self.pending) // 2:] or [0]
        growing = len(half) >= 4 and half[-1] - half[0] > self.rate
        return (self.wrk.non_2xx == 0 and self.wrk.errors == 0
                and self.wrk.rate >= 0.97 * self.rate and max(half) <= self.bound
                and not growing)

    def brief(self) -> str:
        return (f"offered {self.rate:,.0f}/s -> answered {self.wrk.rate:,.0f}/s, p99 "
                f"{self.wrk.p99_ms:.1f} ms, pending max {max(self.pending or [0]):,} "
                f"end {self.pending[-1] if self.pending else 0:,}, non-2xx "
                f"{self.wrk.non_2xx}: {'bounded' if self.bounded else 'NOT bounded'}")


def per_batch(samples: list[tuple[float, float]], before: float) -> list[float]:
    """One delay per batch from (insert count, last batch delay) samples taken once a second:
    a batch's two INSERTs move the count together, and a batch written between two samples
    is not seen. Only batches after ``before`` (the count when the run began) count."""
    return list({inserts: delay for inserts, delay in samples if inserts > before}.values())


def delay_figure(figure_id: str, name: str, step: Step, command: str) -> Figure:
    """Beacon to dashboard while ``step`` held its rate, from its batches' delays."""
    delays = sorted(step.batch_delays)
    return Figure(
        id=figure_id, stage="4 end to end",
        name=(f"{name}: receive to stored, the oldest event of each batch, at a steady "
              f"{step.rate:,.0f} ev/s for {step.seconds} s"),
        unit="s", runs=delays, target="(report)", command=command,
        note=(f"{len(delays)} batches sampled; p50 {percentile(delays, 0.5):.2f} s, "
              f"p99 {percentile(delays, 0.99):.2f} s, max {max(delays, default=0):.2f} s "
              f"(batch timer {BATCH_SECONDS:g} s); each value is the worst of its "
              f"batch's events"))


class Sampler:
    """``read()`` once a second while a wrk run lasts: the dev queue's pending count, or the
    broker's consumer lag (bench/pipeline_kafka.py)."""

    def __init__(self, read: Callable[[], Any], join_seconds: float = 5) -> None:
        self.read, self.join_seconds = read, join_seconds
        self.samples: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.samples.append(self.read())
            except Exception:  # a missed sample is not a failed run
                continue

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.join_seconds)


def readyz(server: Server) -> dict[str, Any]:
    body: dict[str, Any] = server.get_json("/readyz")
    return body


def drain(server: Server, timeout: float = 600) -> None:
    wait_until(lambda: readyz(server)["queue_pending"] == 0, timeout,
               "the queue to drain", every=0.5)


def stored_events(data_dir: str) -> dict[str, int]:
    """Count in chDB from a fresh process, after clickport dev has exited (chDB belongs to
    one process)."""
    import orjson

    script = ("import json, pathlib, sys\n"
              "from services.adapters.chdb_store import ChdbStore\n"
              "s = ChdbStore(pathlib.Path(sys.argv[1]) / 'chdb')\n"
              "r = s.query(sys.argv[3], {'s': sys.argv[2]})[0]\n"
              "print(json.dumps({'rows': int(r['n']), 'ids': int(r['ids'])}))\n")
    out = subprocess.run([PYTHON, "-c", script, data_dir, SITE, STORED_SQL], check=True,
                         capture_output=True, timeout=300, env=child_env()).stdout
    result: dict[str, int] = orjson.loads(out.decode().strip().splitlines()[-1])
    return result


def search(step: Callable[[float, int], Step], top: float, p: Profile) -> Step:
    """Bisection in [0.1 X, 1.25 X] (X measured once, on a shared machine: search a little
    above it too), then the highest bounded rate held for ``e2e_confirm_seconds``; if that
    fails, 15 % less is held. Shared by the dev, the Kafka and the separate-process end-to-end
    figures."""
    lo, hi = 0.1 * top, 1.25 * top
    for _ in range(2 if p.quick else 4):
        mid = (lo + hi) / 2
        if step(mid, p.e2e_step_seconds).bounded:
            lo = mid
        else:
            hi = mid
    confirm = step(lo, p.e2e_confirm_seconds)
    if not confirm.bounded:
        confirm = step(0.85 * lo, p.e2e_confirm_seconds)
    return confirm


def run(ctx: Context) -> list[Figure]:
    p = ctx.profile
    data_dir = str(ctx.scratch("e2e-dev"))
    port = free_port()
    server = Server("e2e-dev", [CLICKPORT, "dev", "--port", str(port)], port,
                    env=child_env(CLICKPORT_DATA_DIR=data_dir, **PRODUCT_ENV),
                    log_dir=ctx.scratch("logs"), ready_path="/readyz")
    bodies = BodyFile(session_bodies(4000))
    n2xx = 0
    steps: list[Step] = []

    def sample() -> tuple[int, int, float]:
        body = readyz(server)
        stats = body["sessionizer"]
        return (int(body["queue_pending"]), stats["inserts"], stats["last_batch_delay_seconds"])

    def step(rate: float, seconds: int) -> Step:
        nonlocal n2xx
        before = readyz(server)["sessionizer"]["inserts"]
        with Sampler(sample) as sampler:
            got = run_wrk(server.base, bodies, seconds=seconds, connections=128, rate=rate,
                          count_status=True)
        n2xx += got.n2xx
        s = Step(rate, seconds, got, [pending for pending, _, _ in sampler.samples],
                 readyz(server)["sessionizer"]["inserts"] - before,
                 per_batch([(inserts, delay) for _, inserts, delay in sampler.samples], before))
        steps.append(s)
        say(f"e2e step ({seconds}s): {s.brief()}")
        drain(server)
        time.sleep(1.0)
        return s

    try:
        server.start()
        add_site(data_dir)  # through the running process
        warm = run_wrk(server.base, bodies, seconds=2, connections=16, count_status=True)
        n2xx += warm.n2xx
        drain(server)
        top = run_wrk(server.base, bodies, seconds=max(3, p.e2e_step_seconds // 3),
                      connections=256, count_status=True)
        n2xx += top.n2xx
        say(f"e2e: closed-loop maximum of clickport dev: {top.brief()}")
        drain(server)
        confirm = search(step, top.rate, p)
        final = readyz(server)
        dropped = final["ingest"]["dropped"]
        accepted = final["ingest"]["accepted"]
    finally:
        server.stop()
        bodies.close()
    counts = stored_events(data_dir)
    # The server's count of 202 answers for accepted events is the denominator: wrk stops
    # with requests in flight whose 202 it never reads, so its own count is a lower bound.
    fraction = counts["rows"] / accepted if accepted else 0.0
    say(f"e2e: 2xx read by wrk {n2xx:,}, answered 202 (accepted) {accepted:,}, "
        f"dropped {dropped}, "
        f"stored rows {counts['rows']:,} (distinct ids {counts['ids']:,}): "
        f"fraction {fraction:.4f}")
    cmd = ctx.command("e2e")
    held = confirm.rate if confirm.bounded else 0.0
    per_table = confirm.inserts / 2 / confirm.seconds
    return [
        Figure(id="e2e.sustained_rate", stage="4 end to end",
               name=f"highest offered rate with bounded queue lag, clickport dev, held "
                    f"{confirm.seconds} s", unit="ev/s", runs=[held],
               target="(report)", command=cmd,
               note=(f"{confirm.brief()}; closed-loop maximum {top.rate:,.0f}/s; bisection: "
                     + "; ".join(f"{s.rate:,.0f} {'ok' if s.bounded else 'no'}"
                                 for s in steps[:-1])),
               extra={"steps": [{"rate": s.rate, "answered": s.wrk.rate,
                                 "pending": s.pending, "bounded": s.bounded,
                                 "p99_ms": s.wrk.p99_ms} for s in steps]}),
        Figure(id="e2e.stored_fraction", stage="4 end to end",
               name="fraction of 2xx events stored (events FINAL / events answered 202)",
               unit="", runs=[fraction], target="== 1.000", judge="value == 1.0",
               command=cmd,
               note=(f"{counts['rows']:,} rows ({counts['ids']:,} distinct event ids) for "
                     f"{accepted:,} events answered 202 (wrk read {n2xx:,} of those answers; "
                     f"the rest were in flight when its runs ended); dropped "
                     f"{dropped or 'none'}"),
               extra={"counts": counts, "n2xx": n2xx, "accepted": accepted}),
        delay_figure("e2e.batch_delay", "beacon to dashboard, clickport dev", confirm, cmd),
        Figure(id="e2e.inserts_per_table", stage="3 store",
               name=f"INSERTs per table per second, clickport dev at a steady "
                    f"{confirm.rate:,.0f} ev/s for {confirm.seconds} s", unit="/s/table",
               runs=[per_table], target="<= 1", judge="value <= 1", command=cmd,
               note=(f"{confirm.inserts} INSERT statements (events + sessions) from the "
                     f"sessionizer's stats over the run")),
    ]
