"""Benchmark 1, ingest: beacons/s of ``POST /api/event`` against a bare ASGI app.

Five servers, each one uvicorn process with uvloop + httptools, no access log and no proxy
headers (as `clickport` runs its services), pinned to core 1 (started together, idle when
not under load):

- ``bare``: `bench.apps.bare_app`, read the body, answer 204: the limit of the HTTP stack.
- ``dev``: ``clickport dev``: what a user runs; the sessionizer consumes in the same process
  (and on the same core) while ingest answers.
- ``memory``: ingest alone on the embedded disk queue (`bench.apps.ingest_memory_app`).
- ``memory_full``: the same with ``CLICKPORT_QUEUE_SYNC=full``: SQLite fsyncs the WAL at each
  commit (a group of beacons), so a 2xx survives power loss too; the cost of that promise.
- ``kafka``: ``clickport ingest`` publishing to the real local broker (``acks=all``); the
  broker runs on core 0 with wrk.

Every server has the site registered, the rate limit off and the bot filter on; the beacon
is a ~330-byte click with a desktop Chrome User-Agent, 2,000 distinct sessions in rotation.
Throughput: wrk, one thread on core 0, closed loop, interleaved as bare, X, bare, Y, ... for
several rounds; each ratio pairs a run with the bare run just before it. Latency: a paced
run at half of that server's median maximum (see bench/post_event.lua), p99 from wrk.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from bench.common import (
    CLICKPORT,
    PYTHON,
    UVICORN_FLAGS,
    Context,
    Figure,
    Server,
    child_env,
    free_port,
    median,
    paired_ratios,
    say,
    wait_until,
)
from bench.kafka import new_topic
from bench.workload import SITE, click_bodies
from bench.wrk_load import BodyFile, WrkResult, run_wrk

PRODUCT_ENV = {"CLICKPORT_RATE_LIMIT_PER_MINUTE": "0", "CLICKPORT_BOT_FILTER": "on",
               "CLICKPORT_VISITOR_SALT_SECRET": "bench-secret"}
VARIANTS = ("dev", "memory", "memory_full", "kafka")
LABEL = {"dev": "clickport dev (ingest + sessionizer in one process, disk queue)",
         "memory": "ingest only, embedded disk queue",
         "memory_full": "ingest only, embedded disk queue, CLICKPORT_QUEUE_SYNC=full (fsync "
                        "per commit)",
         "kafka": "clickport ingest, Kafka transport (acks=all)"}
TARGET = {"dev": 0.55, "memory": 0.55, "memory_full": 0.55, "kafka": 0.45}


def add_site(data_dir: str, extra_env: dict[str, str] | None = None) -> None:
    """Register the site with the CLI (directly, or through a running ``clickport dev``)."""
    env = child_env(CLICKPORT_DATA_DIR=data_dir, **PRODUCT_ENV, **(extra_env or {}))
    subprocess.run([CLICKPORT, "sites", "add", SITE], env=env, check=True,
                   capture_output=True, timeout=120)


def build_servers(ctx: Context) -> dict[str, Server]:
    logs = ctx.scratch("logs")
    servers: dict[str, Server] = {}
    port = free_port()
    servers["bare"] = Server("bare", [PYTHON, "-m", "uvicorn", "--factory", "bench.apps:bare_app",
                                      "--port", str(port), *UVICORN_FLAGS],
                             port, env=child_env(), log_dir=logs)
    dev_dir = str(ctx.scratch("ingest-dev"))
    port = free_port()
    servers["dev"] = Server("dev", [CLICKPORT, "dev", "--port", str(port)], port,
                            env=child_env(CLICKPORT_DATA_DIR=dev_dir, **PRODUCT_ENV),
                            log_dir=logs, ready_path="/readyz")
    for name, extra in (("memory", {}), ("memory_full", {"CLICKPORT_QUEUE_SYNC": "full"})):
        queue_dir = str(ctx.scratch(f"ingest-{name.replace('_', '-')}"))
        add_site(queue_dir)
        port = free_port()
        servers[name] = Server(
            name, [PYTHON, "-m", "uvicorn", "--factory", "bench.apps:ingest_memory_app",
                   "--port", str(port), *UVICORN_FLAGS], port,
            env=child_env(BENCH_DATA_DIR=queue_dir, **PRODUCT_ENV, **extra), log_dir=logs,
            ready_path="/readyz")
    kafka_dir = str(ctx.scratch("ingest-kafka"))
    add_site(kafka_dir)
    bootstrap = ctx.broker.bootstrap
    topic = new_topic(bootstrap, "bench.ingest", 12)
    port = free_port()
    servers["kafka"] = Server(
        "kafka", [CLICKPORT, "ingest", "--port", str(port)], port,
        env=child_env(CLICKPORT_DATA_DIR=kafka_dir, CLICKPORT_TRANSPORT="kafka",
                      CLICKPORT_STORE="chdb", CLICKPORT_KAFKA_BOOTSTRAP=bootstrap,
                      CLICKPORT_KAFKA_TOPIC=topic, **PRODUCT_ENV),
        log_dir=logs, ready_path="/readyz")
    return servers


def accepted_and_dropped(name: str, server: Server) -> tuple[int, dict[str, int]]:
    if name == "dev":
        body = server.get_json("/readyz")["ingest"]
        return body["accepted"], body["dropped"]
    if name in ("memory", "memory_full", "kafka"):
        return server.get_json("/readyz")["accepted"], {}
    return 0, {}


def settle(name: str, server: Server) -> None:
    """Let the dev server's sessionizer drain the queue before the next run (it shares the
    core), then give chDB's background merges a moment."""
    if name != "dev":
        return
    wait_until(lambda: server.get_json("/readyz")["queue_pending"] == 0, 600,
               "clickport dev to drain its queue", every=0.5)
    time.sleep(1.0)


def run(ctx: Context) -> list[Figure]:
    p = ctx.profile
    bodies = BodyFile(click_bodies(2000))
    servers = build_servers(ctx)
    max_runs: dict[str, list[WrkResult]] = {name: [] for name in servers}
    pairs: dict[str, list[tuple[WrkResult, WrkResult]]] = {v: [] for v in VARIANTS}
    half: dict[str, list[WrkResult]] = {name: [] for name in servers}
    checks: dict[str, Any] = {}
    per_cpu: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    try:
        for name, server in servers.items():
            say(f"ingest: starting {name} server")
            server.start()
        add_site(str(ctx.workdir / "ingest-dev"))  # through the running clickport dev
        for name, server in servers.items():  # warm up: connections, caches, first salts
            warm = run_wrk(server.base, bodies, seconds=1, connections=8)
            settle(name, server)
            if name != "bare":
                accepted, dropped = accepted_and_dropped(name, server)
                if dropped or accepted < 0.99 * warm.requests:
                    raise RuntimeError(f"{name}: {warm.requests} beacons sent, {accepted} "
                                       f"accepted, dropped {dropped}: the benchmark would "
                                       "measure the drop path")
        for round_no in range(1, p.rounds + 1):
            for variant in VARIANTS:
                bare_cpu = servers["bare"].cpu_seconds()
                base = run_wrk(servers["bare"].base, bodies, seconds=p.wrk_seconds,
                               connections=p.wrk_connections)
                bare_cpu = servers["bare"].cpu_seconds() - bare_cpu
                before, _ = accepted_and_dropped(variant, servers[variant])
                cpu = servers[variant].cpu_seconds()
                got = run_wrk(servers[variant].base, bodies, seconds=p.wrk_seconds,
                              connections=p.wrk_connections)
                after, _ = accepted_and_dropped(variant, servers[variant])
                settle(variant, servers[variant])  # dev: CPU counts the drain too
                cpu = servers[variant].cpu_seconds() - cpu
                checks.setdefault(variant, []).append(
                    {"wrk_requests": got.requests, "server_accepted": after - before,
                     "non_2xx": got.non_2xx, "errors": got.errors})
                per_cpu[variant].append((got.requests / cpu, base.requests / bare_cpu))
                say(f"ingest round {round_no}: bare {base.brief()} | {variant} {got.brief()} "
                    f"| ratio {got.rate / base.rate:.3f} | per CPU-second: {variant} "
                    f"{got.requests / cpu:,.0f}, bare {base.requests / bare_cpu:,.0f}")
                max_runs["bare"].append(base)
                max_runs[variant].append(got)
                pairs[variant].append((got, base))
        for round_no in range(1, p.rounds + 1):
            for name in ("bare", *VARIANTS):
                rate = 0.5 * (median([r.rate for r in max_runs[name]]) or 1000)
                got = run_wrk(servers[name].base, bodies, seconds=p.wrk_seconds,
                              connections=p.wrk_connections, rate=rate)
                half[name].append(got)
                say(f"ingest half load round {round_no}: {name} at {rate:,.0f}/s offered: "
                    f"{got.brief()}")
                settle(name, servers[name])
        peak_rss = {name: server.peak_rss_mb() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        bodies.close()
    return figures(ctx, max_runs, pairs, half, checks, per_cpu, peak_rss)


def figures(ctx: Context, max_runs: dict[str, list[WrkResult]],
            pairs: dict[str, list[tuple[WrkResult, WrkResult]]],
            half: dict[str, list[WrkResult]], checks: dict[str, Any],
            per_cpu: dict[str, list[tuple[float, float]]],
            peak_rss: dict[str, float]) -> list[Figure]:
    cmd = ctx.command("ingest")
    out = []
    for variant in VARIANTS:
        got = [g.rate for g, _ in pairs[variant]]
        base = [b.rate for _, b in pairs[variant]]
        bad = [c for c in checks.get(variant, []) if c["non_2xx"] or c["errors"]]
        out.append(Figure(
            id=f"ingest.{variant}.throughput", stage="1 ingest",
            name=f"POST /api/event beacons/s: {LABEL[variant]}", unit="req/s",
            runs=got, baseline_name="bare ASGI 204 app, same core", baseline_runs=base,
            ratios=paired_ratios(got, base), target=f">= {TARGET[variant]} x bare",
            judge=f"ratio >= {TARGET[variant]}", command=cmd,
            note=("non-2xx or socket errors in some runs: " + str(bad)) if bad else "",
            extra={"checks": checks.get(variant, [])}))
        got_cpu = [g for g, _ in per_cpu[variant]]
        base_cpu = [b for _, b in per_cpu[variant]]
        out.append(Figure(
            id=f"ingest.{variant}.per_cpu_second", stage="1 ingest",
            name=f"beacons per CPU-second of the server process: {LABEL[variant]}",
            unit="req/CPU-s", runs=got_cpu, baseline_name="bare ASGI 204 app",
            baseline_runs=base_cpu, ratios=paired_ratios(got_cpu, base_cpu),
            target=f"(capacity of one core; >= {TARGET[variant]} x bare)",
            judge=f"ratio >= {TARGET[variant]}", command=cmd,
            note=("requests / (user+system CPU time of the server during the run"
                  + (", and the sessionizer's drain after it" if variant == "dev" else "")
                  + "): what one dedicated core would answer; insensitive to other work "
                  f"on the machine. Peak RSS of the server over the whole benchmark "
                  f"{peak_rss[variant]:,.0f} MB (the bare app {peak_rss['bare']:,.0f} MB)"),
            extra={"peak_rss_mb": peak_rss[variant]}))
    for name in ("bare", *VARIANTS):
        runs = half[name]
        label = "bare ASGI 204 app (reference)" if name == "bare" else LABEL[name]
        offered = median([0.5 * (median([r.rate for r in max_runs[name]]) or 0)])
        out.append(Figure(
            id=f"ingest.{name}.p99_half_load", stage="1 ingest",
            name=f"p99 latency at half load: {label}", unit="ms",
            runs=[r.p99_ms for r in runs],
            target="<= 5 ms" if name != "bare" else "(reference)",
            judge="value <= 5" if name != "bare" else "", command=cmd,
            note=(f"paced wrk at {offered:,.0f} req/s offered (half the median max); "
                  f"achieved {median([r.rate for r in runs]) or 0:,.0f}/s; "
                  f"p50 {median([r.p50_ms for r in runs]) or 0:.2f} ms, "
                  f"p99.9 {median([r.p999_ms for r in runs]) or 0:.2f} ms"),
            extra={"p50_ms": [r.p50_ms for r in runs], "p999_ms": [r.p999_ms for r in runs],
                   "achieved": [r.rate for r in runs], "offered": offered}))
    return out
