"""Benchmark 4c, end to end on separate processes: the production topology as tests/stack.py
launches it (the recipe behind scripts/stack, reused, on free ports in the bench scratch
directory): a Kafka broker, a ClickHouse server (chDB's LocalServer), 2 x ``clickport
ingest``, 3 x ``clickport sessionizer`` (one consumer group) and ``clickport api``, each its
own OS process on loopback, on ``CLICKPORT_TRANSPORT=kafka CLICKPORT_STORE=clickhouse``.

Placement, the rule of the Kafka end to end (bench/pipeline_kafka.py): the pipeline's own
processes on core 1, the broker with the load generator and this orchestrator on core 0.
Here the pipeline's processes are the five services, the API (idle: part of the topology)
and the ClickHouse server, every thread of each pinned to core 1 once it is ready; in 4b
the store was chDB inside the sessionizer, on core 1, so the server's work stays on the
same core budget. The broker's threads are pinned to core 0.

1. The launcher starts the broker and the server, migrates, creates the topic; the bench
   site is registered before the services start (ingest loads the sites when it starts),
   then the services are started and each one's /readyz waited for (`Stack.up`).
2. Load: one wrk process with one thread per ingest process (``BENCH_HOSTS`` in
   bench/post_event.lua), each thread with half the connections and half the offered rate,
   so the two ingest processes get equal shares and one latency histogram covers both. The
   same session traffic as benchmarks 4 and 4b.
3. A closed-loop run over both gives X; then `bench.pipeline_e2e.search` driven by
   `bench.pipeline_kafka.KafkaPipeline`, as in 4b: bisection in [0.1 X, 1.25 X], steps of
   ``e2e_step_seconds``, bounded when all answers are 2xx, >= 97 % of the offered rate is
   answered and the consumer lag (end offsets minus the group's committed offsets, read
   from the broker each second) stays under max(5,000, 2 s of traffic) in the step's
   second half without growing; the lag drains to 0 between steps. The highest bounded rate
   is held for ``e2e_confirm_seconds`` (60 s; quick 5 s), 15 % less if that fails.
4. After the hold drains, the services stop gracefully (SIGTERM role by role as the
   launcher's ``down`` does: API, sessionizers (flush, commit, leave the group), ingest
   (the producer drains)), and the events in the server are counted: rows FINAL / events the
   two ingest processes answered 202 (their own count) must be exactly 1.000, duplicates
   (rows - distinct event ids) 0. Then the server and the broker stop.

CPU per event of each role (/proc/PID/stat, user + system, summed over its processes): from
the hold's start until its lag drained, per event answered 202 in it.
"""

from __future__ import annotations

import pathlib
import re
import sys
from typing import Any

import httpx

from bench.clickhouse import allowed_cores, pin_process
from bench.common import (
    CLIENT_CORE,
    SERVER_CORE,
    Context,
    Figure,
    percentile,
    say,
)
from bench.ingest_load import PRODUCT_ENV
from bench.pipeline_e2e import STORED_SQL, delay_figure, search
from bench.pipeline_kafka import KafkaPipeline, LagProbe, metric
from bench.workload import SITE, session_bodies
from bench.wrk_load import BodyFile

# The roles whose CPU per event is reported, in the order shown; the API runs idle.
ROLES = {"ingest": "clickport ingest", "sessionizer": "clickport sessionizer",
         "clickhouse": "ClickHouse server", "broker": "Kafka broker"}


def launcher() -> Any:
    """tests/stack.py, the launcher of scripts/stack."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
    import stack

    return stack


def place(stack: Any) -> dict[str, list[int]]:
    """Pin every thread of the pipeline's processes to core 1 and the broker's to core 0;
    returns role -> pids, checked against what the kernel reports."""
    roles: dict[str, list[int]] = {
        role: [s.proc.pid for s in stack.of(role)] for role in ("ingest", "sessionizer", "api")}
    roles["clickhouse"] = [stack.clickhouse.proc.pid]
    roles["broker"] = [stack.broker.proc.pid]
    for role, pids in roles.items():
        core = CLIENT_CORE if role == "broker" else SERVER_CORE
        for pid in pids:
            pin_process(pid, core)
            if allowed_cores(pid) != {core}:
                raise RuntimeError(f"{role} (pid {pid}) not pinned to core {core}: "
                                   f"{allowed_cores(pid)}")
    return roles


def readyz(base: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(base + "/readyz", timeout=30).json()
    return body


def run(ctx: Context) -> list[Figure]:
    p = ctx.profile
    st = launcher()
    stack = st.Stack(ctx.scratch("e2e-stack"), st.Ports.free(), env=PRODUCT_ENV)
    lines: list[str] = []

    def told(line: str) -> None:
        lines.append(line)
        say(f"e2e stack: {' '.join(line.split())}")

    bodies = BodyFile(session_bodies(4000))
    probe: LagProbe | None = None
    try:
        st.kafka_broker.ensure_kafka_libs(stack.broker.libs)
        for part in stack.backing:
            part.ensure(told)
        told(stack.clickport("migrate"))
        told(stack.clickport("sites", "add", SITE))  # before ingest starts: no refresh wait
        stack.up(demo=False, say=told)
        roles = place(stack)
        say(f"e2e stack: {', '.join(f'{r} {len(pids)}' for r, pids in roles.items())} "
            f"process(es); all on core {SERVER_CORE} but the broker (core {CLIENT_CORE})")
        ingest = [s.url for s in stack.of("ingest")]
        sessionizers = [s.url for s in stack.of("sessionizer")]
        probe = LagProbe(stack.broker.bootstrap, stack.topic, stack.group,
                         stack.settings.kafka_partitions)
        pipe = KafkaPipeline("e2e stack", probe, bodies, ingest, sessionizers, roles)
        pipe.wrk(2, 16)  # warm-up: the group has settled once this drains
        pipe.drain()
        idle = pipe.idle(2 if p.quick else 10)
        say("e2e stack: CPU time per second with no traffic: "
            + ", ".join(f"{role} {share:.1%}" for role, share in idle.items()))
        top = pipe.wrk(max(3, p.e2e_step_seconds // 3), 256)
        say(f"e2e stack: closed-loop maximum over both ingest processes: {top.brief()}")
        pipe.drain()
        confirm = search(pipe.step, top.rate, p)
        accepted = pipe.accepted()
        unavailable = sum(int(readyz(base)["unavailable"]) for base in ingest)
        dropped = int(metric(ingest, "clickport_ingest_dropped_total"))
        written = int(metric(sessionizers, "clickport_sessionizer_events_written_total"))
        replayed = int(metric(sessionizers, "clickport_sessionizer_replayed_skipped_total"))
        corrupt = int(metric(sessionizers, "clickport_sessionizer_corrupt_total"))
        final_lag = probe.lag()
        probe.close()
        probe = None
        mark = len(lines)
        stack.down_services(told)
        killed = [line.split()[0] for line in lines[mark:] if line.endswith("killed")]
        stopped = {s.name: s.proc.returncode for s in stack.services.values()
                   if s.proc is not None}
        troubled = {s.name: n for s in stack.services.values() if (n := log_errors(s.log_path))}
        left_group = sum("LeaveGroup request succeeded" in log_text(s.log_path)
                         for s in stack.of("sessionizer"))
        counts = stored(stack)
    finally:
        if probe is not None:
            probe.close()
        stack.down(told)
        bodies.close()
    left = [part.name for part in stack.parts() if part.pid() is not None]
    if left:
        raise RuntimeError(f"still running after the launcher's down: {left}")
    fraction = counts["rows"] / accepted if accepted else 0.0
    duplicates = counts["rows"] - counts["ids"]
    say(f"e2e stack: 2xx read by wrk {pipe.n2xx:,}, answered 202 (accepted) {accepted:,}, "
        f"503 {unavailable}, dropped {dropped}, sessionizers wrote {written:,} (replays "
        f"skipped {replayed}, corrupt {corrupt}), lag at the end {final_lag}, exit codes "
        f"{stopped}, killed after the grace period {killed or 'none'}, sessionizers that "
        f"left the group {left_group}, error lines in the "
        f"services' logs {troubled or 'none'}; stored rows "
        f"{counts['rows']:,} (distinct ids {counts['ids']:,}): fraction {fraction:.4f}")
    return figures(ctx, pipe, confirm, top.rate, {
        "counts": counts, "n2xx": pipe.n2xx, "accepted": accepted, "unavailable": unavailable,
        "dropped": dropped, "written": written, "replayed_skipped": replayed,
        "corrupt": corrupt, "exit_codes": stopped, "killed": killed, "log_errors": troubled,
        "left_group": left_group, "fraction": fraction, "duplicates": duplicates,
        "idle_cpu": idle})


def log_text(path: pathlib.Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def log_errors(path: pathlib.Path) -> int:
    """Lines of a service's log that report an error or a traceback (a clean run and a
    graceful stop leave none)."""
    return len(re.findall(r"^(?:.*\bERROR\b|.*\bCRITICAL\b|Traceback )", log_text(path),
                          re.M))


def stored(stack: Any) -> dict[str, int]:
    """Events of the bench site in the server, counted once the services have stopped."""
    from services.adapters.clickhouse_store import ClickHouseStore

    store = ClickHouseStore(stack.clickhouse_url)
    try:
        row = store.query(STORED_SQL, {"s": SITE})[0]
    finally:
        store.close()
    return {"rows": int(row["n"]), "ids": int(row["ids"])}


def statuses(codes: dict[str, int | None]) -> str:
    """Exit statuses by value; -15 is a graceful stop: uvicorn finishes its shutdown, then
    raises the SIGTERM it caught again."""
    by: dict[str, list[str]] = {}
    for name, code in codes.items():
        by.setdefault("-15 (SIGTERM re-raised after shutdown)" if code == -15 else str(code),
                      []).append(name)
    return "; ".join(f"{code}: {', '.join(names)}" for code, names in by.items())


def figures(ctx: Context, pipe: KafkaPipeline, confirm: Any, top: float,
            end: dict[str, Any]) -> list[Figure]:
    cmd = ctx.command("e2e_stack")
    stage = "4 end to end"
    held = confirm.rate if confirm.bounded else 0.0
    where = (f"{len(pipe.ingest)} x clickport ingest, {len(pipe.sessionizers)} x clickport "
             f"sessionizer, clickport api and a ClickHouse server as separate processes on "
             f"core {SERVER_CORE}, Kafka broker on core {CLIENT_CORE} (tests/stack.py)")
    lag = confirm.pending or [0]
    half = lag[len(lag) // 2:]
    wrk = confirm.wrk
    at = f"at the held {confirm.rate:,.0f} ev/s for {confirm.seconds} s"
    counts = end["counts"]
    out = [
        Figure(id="e2e_stack.sustained_rate", stage=stage,
               name=f"highest offered rate with bounded consumer lag, {where}, held "
                    f"{confirm.seconds} s", unit="ev/s", runs=[held], target="(report)",
               command=cmd,
               note=(f"{confirm.brief()}; {confirm.usage()} (summed over a role's "
                     f"processes); closed-loop maximum over both ingest processes "
                     f"{top:,.0f}/s; bisection: {pipe.bisection()}; 1-min load average "
                     f"after each step: {', '.join(s.load1 for s in pipe.steps)}"),
               extra={"steps": pipe.step_records(), "partitions": pipe.probe.partitions}),
        Figure(id="e2e_stack.latency_p50", stage=stage,
               name=f"client latency p50 (wrk, both ingest processes), {at}", unit="ms",
               runs=[wrk.p50_ms], target="(report)", command=cmd,
               note=(f"p90 {wrk.p90_ms:.1f} ms, p99 {wrk.p99_ms:.1f} ms, p99.9 "
                     f"{wrk.p999_ms:.1f} ms; wrk's clock starts at the paced send")),
        Figure(id="e2e_stack.latency_p99", stage=stage,
               name=f"client latency p99 (wrk, both ingest processes), {at}", unit="ms",
               runs=[wrk.p99_ms], target="(report)", command=cmd,
               note=f"{wrk.requests:,} requests, {wrk.errors} errors, {wrk.non_2xx} non-2xx"),
        Figure(id="e2e_stack.hold_lag", stage=stage,
               name=f"consumer lag during the hold, sampled each second from the broker, {at}",
               unit="events", runs=[float(x) for x in lag], target="(report)", command=cmd,
               note=(f"{len(lag)} samples; p50 {percentile(lag, 0.5):,.0f}, max "
                     f"{max(lag):,}; second half max {max(half):,} against the bound "
                     f"{confirm.bound:,.0f} (max(5,000, 2 s of traffic)); last "
                     f"{lag[-1]:,}")),
    ]
    for role, label in ROLES.items():
        processes = len(pipe.roles[role])
        idle = end["idle_cpu"][role]
        total = confirm.cpu_per_event[role]
        # The idle cost, over the time from the hold's start until its lag drained.
        marginal = (total - idle * confirm.drained_seconds / confirm.accepted
                    if confirm.accepted else 0.0)
        out.append(Figure(
            id=f"e2e_stack.cpu_per_event.{role}", stage=stage,
            name=f"CPU per event, {label} ({processes} process{'es' * (processes > 1)}), {at}",
            unit="µs/ev", runs=[total * 1e6], target="(report)",
            command=cmd,
            note=(f"user + system time (/proc/PID/stat) from the hold's start until its lag "
                  f"drained ({confirm.drained_seconds:.1f} s), per event answered 202 "
                  f"({confirm.accepted:,}); it ran {confirm.cpu[role]:.0%} of a core while wrk "
                  f"ran (core {CLIENT_CORE if role == 'broker' else SERVER_CORE}); with no "
                  f"traffic it uses {idle:.1%} of a core, so {marginal * 1e6:,.0f} µs/ev "
                  f"above idle"),
            extra={"idle_cpu_per_second": idle, "above_idle_us": marginal * 1e6}))
    out += [
        Figure(id="e2e_stack.stored_fraction", stage=stage,
               name="fraction of 2xx events stored on separate processes (events FINAL in "
                    "the ClickHouse server / events both ingest processes answered 202)",
               unit="", runs=[end["fraction"]], target="== 1.000", judge="value == 1.0",
               command=cmd,
               note=(f"{counts['rows']:,} rows ({counts['ids']:,} distinct event ids) for "
                     f"{end['accepted']:,} events answered 202 (wrk read {end['n2xx']:,} of "
                     f"those answers); 503 {end['unavailable']}; dropped "
                     f"{end['dropped'] or 'none'}; sessionizers wrote {end['written']:,} "
                     f"event rows, skipped {end['replayed_skipped']} replays, "
                     f"{end['corrupt']} corrupt; counted after a graceful stop (SIGTERM; "
                     f"exit statuses {statuses(end['exit_codes'])}; killed after the grace "
                     f"period: {', '.join(end['killed']) or 'none'}; sessionizers that left "
                     f"the group: {end['left_group']} of {len(pipe.sessionizers)}; error "
                     f"lines in the "
                     f"services' logs: {end['log_errors'] or 'none'})"),
               extra=end),
        Figure(id="e2e_stack.duplicates", stage=stage,
               name="duplicates stored on separate processes (rows FINAL - distinct event ids)",
               unit="rows", runs=[float(end["duplicates"])], target="== 0",
               judge="value == 0", command=cmd),
        delay_figure("e2e_stack.batch_delay", "beacon to dashboard on separate processes "
                     "(each sessionizer's batches)", confirm, cmd),
    ]
    return out
