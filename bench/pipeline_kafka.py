"""Benchmark 4 on the production path (end to end over Kafka), on one machine: ``clickport
ingest`` (Kafka transport, ``acks=all``) and ``clickport sessionizer`` as two processes, both
pinned to core 1; the local broker, wrk and this orchestrator (which samples the lag) on
core 0. Same session traffic and the same search as the ``clickport dev`` figure
(bench/pipeline_e2e.py); only the lag differs: here it is Kafka's own, read from the broker.

Stores: chDB belongs to one process per data path, so each service has its own, as in
production they would share one ClickHouse. Ingest's (a data dir with the site registered,
where it loads sites and keeps visitor salts) and the sessionizer's (migrated, the same site
registered, no goals), where the events land and are counted.

1. A fresh 12-partition topic and consumer group; both services started and warmed up.
2. A closed-loop run against ingest gives its maximum X (the sessionizer consumes meanwhile,
   on the same core).
3. `bench.pipeline_e2e.search`: bisection in [0.1 X, 1.25 X] with steps of
   ``e2e_step_seconds``, then the highest bounded rate held for ``e2e_confirm_seconds`` (60 s
   in the full profile; 15 % less if it fails). A step is bounded when every request is
   answered 2xx at >= 97 % of the offered rate and the consumer lag, sampled each second from
   the broker (end offsets minus the group's committed offsets, summed over partitions),
   stays under max(5,000, 2 s of traffic) in the step's second half without growing. Between
   steps the lag drains to 0. The sessionizer's ``last_batch_delay_seconds`` and insert
   count, sampled from its /metrics each second, give the held rate's freshness, as in the
   dev figure.
4. After the last step drains, both processes are stopped (the sessionizer flushes, commits
   and leaves the group), and the events in the sessionizer's chDB are counted: stored /
   (events ingest answered 202 and Kafka acknowledged, ingest's own count) must be exactly
   1.000, with as many distinct event ids as rows.
"""

from __future__ import annotations

import asyncio
import pathlib
import re
import threading
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from bench.common import (
    CLICKPORT,
    Context,
    Figure,
    Server,
    child_env,
    cpu_seconds,
    free_port,
    load_average,
    say,
    wait_until,
)
from bench.ingest_load import PRODUCT_ENV, add_site
from bench.kafka import new_topic
from bench.pipeline_e2e import Sampler, Step, delay_figure, per_batch, search, stored_events
from bench.workload import session_bodies
from bench.wrk_load import BodyFile, WrkResult, run_wrk

PARTITIONS = 12
T = TypeVar("T")


class LagProbe:
    """Consumer lag as the broker sees it: sum over the topic's partitions of (end offset -
    the group's committed offset, or 0 when none is committed yet). An admin client and a
    group-less consumer on an event loop in a thread of this (core 0) process."""

    def __init__(self, bootstrap: str, topic: str, group: str,
                 partitions: int = PARTITIONS) -> None:
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.partitions = partitions
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._admin: Any = None
        self._consumer: Any = None
        self._call(self._start())

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self._admin.start()
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                          enable_auto_commit=False)
        await self._consumer.start()
        self._partitions = [TopicPartition(self.topic, p) for p in range(self.partitions)]

    async def _lag(self) -> int:
        committed = await self._admin.list_consumer_group_offsets(
            self.group, partitions=self._partitions)
        ends = await self._consumer.end_offsets(self._partitions)
        total = 0
        for tp in self._partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            total += max(0, ends[tp] - done)
        return total

    def lag(self) -> int:
        return self._call(self._lag())

    def close(self) -> None:
        async def stop() -> None:
            if self._consumer is not None:
                await self._consumer.stop()
            if self._admin is not None:
                await self._admin.close()

        try:
            self._call(stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()


@dataclass
class KafkaStep(Step):
    """A step whose ``pending`` samples are the broker's consumer lag, with what each role's
    processes used: CPU time per second of the wrk run, their event-loop (main) threads'
    run-queue wait per second, and CPU time per event answered 202 from the step's start
    until the lag drained (the sessionizers' tail included)."""

    cpu: dict[str, float] = field(default_factory=dict)
    wait: dict[str, float] = field(default_factory=dict)
    cpu_per_event: dict[str, float] = field(default_factory=dict)
    accepted: int = 0  # events ingest answered 202 in the step
    drained_seconds: float = 0.0  # from the step's start until the lag drained
    load1: str = ""  # 1-min load average after the step

    def brief(self) -> str:
        return super().brief().replace("pending max", "lag max")

    def usage(self) -> str:
        ran = ", ".join(f"{role} {share:.0%}" for role, share in self.cpu.items())
        waited = ", ".join(f"{role} {share:.0%}" for role, share in self.wait.items())
        return (f"CPU time per second: {ran}; event-loop threads runnable but waiting for a "
                f"CPU: {waited}")


def run_queue_wait(pid: int) -> float:
    """Seconds the main thread of ``pid`` (uvicorn's event loop in a service) has spent
    runnable but not running (/proc/PID/schedstat): other work on its core, or the
    hypervisor's steal."""
    try:
        return int(pathlib.Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def metrics(base: str, *names: str) -> list[float]:
    """For each name, the sum of its samples on ``base``/metrics (all label sets)."""
    text = httpx.get(base + "/metrics", timeout=30).text
    totals = [0.0] * len(names)
    for line in text.splitlines():
        for i, name in enumerate(names):
            if re.match(rf"{re.escape(name)}(\{{| )", line):
                totals[i] += float(line.rsplit(" ", 1)[1])
    return totals


def metric(bases: Sequence[str], name: str) -> float:
    """``name`` summed over the services at ``bases``."""
    return sum(metrics(base, name)[0] for base in bases)


INSERTS = "clickport_sessionizer_inserts_total"
BATCH_DELAY = "clickport_sessionizer_last_batch_delay_seconds"


class KafkaPipeline:
    """Drives and measures an end to end over Kafka from core 0 (here, and on separate
    processes in bench/pipeline_stack.py): wrk spread over the ingest processes (one thread
    each), the broker's consumer lag each second, each sessionizer's insert count and last
    batch delay each second, and per step the CPU time (/proc/PID/stat) and event-loop
    run-queue wait of each role's processes (``roles``: role -> pids; ``loops``: the roles
    whose main thread is an event loop)."""

    def __init__(self, label: str, probe: LagProbe, bodies: BodyFile, ingest: Sequence[str],
                 sessionizers: Sequence[str], roles: dict[str, list[int]],
                 loops: Sequence[str] = ("ingest", "sessionizer")) -> None:
        self.label, self.probe, self.bodies = label, probe, bodies
        self.ingest, self.sessionizers = list(ingest), list(sessionizers)
        self.roles, self.loops = roles, list(loops)
        self.steps: list[KafkaStep] = []
        self.n2xx = 0  # 2xx answers wrk read, over every run

    def wrk(self, seconds: int, connections: int, rate: float = 0) -> WrkResult:
        got = run_wrk(self.ingest[0], self.bodies, seconds=seconds, connections=connections,
                      rate=rate, count_status=True, also=self.ingest[1:])
        self.n2xx += got.n2xx
        return got

    def accepted(self) -> int:
        """Events the ingest processes answered 202 (Kafka acknowledged), their own count."""
        return sum(int(httpx.get(base + "/readyz", timeout=30).json()["accepted"])
                   for base in self.ingest)

    def drain(self, timeout: float = 600) -> None:
        wait_until(lambda: self.probe.lag() == 0, timeout, "the consumer lag to drain",
                   every=0.5)

    def idle(self, seconds: float) -> dict[str, float]:
        """CPU time per second of each role with no traffic (timers, polls, merges)."""
        cpu = self._cpu()
        time.sleep(seconds)
        return {role: (used - cpu[role]) / seconds for role, used in self._cpu().items()}

    def _cpu(self) -> dict[str, float]:
        return {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in self.roles.items()}

    def _waits(self) -> dict[str, float]:
        return {role: sum(run_queue_wait(pid) for pid in self.roles[role]) for role in self.loops}

    def _batches(self) -> list[list[float]]:
        return [metrics(base, INSERTS, BATCH_DELAY) for base in self.sessionizers]

    def step(self, rate: float, seconds: int) -> KafkaStep:
        """``rate`` offered for ``seconds``; then the lag drains to 0 (the next step starts
        from an empty topic)."""
        before = [inserts for inserts, _ in self._batches()]
        accepted, cpu, waits = self.accepted(), self._cpu(), self._waits()
        started = time.monotonic()
        with Sampler(self.probe.lag, join_seconds=35) as lags, \
                Sampler(self._batches) as batches:
            got = self.wrk(seconds, 128, rate)
        ran = {role: (used - cpu[role]) / got.seconds for role, used in self._cpu().items()}
        waited = {role: (w - waits[role]) / got.seconds for role, w in self._waits().items()}
        inserts = int(sum(inserts for inserts, _ in self._batches()) - sum(before))
        load1 = load_average().split()[0]
        self.drain()
        drained = time.monotonic() - started
        events = self.accepted() - accepted
        per_event = {role: (used - cpu[role]) / events if events else 0.0
                     for role, used in self._cpu().items()}
        delays = [delay for i, start in enumerate(before)
                  for delay in per_batch([(s[i][0], s[i][1]) for s in batches.samples], start)]
        s = KafkaStep(rate, seconds, got, lags.samples, inserts, delays, cpu=ran, wait=waited,
                      cpu_per_event=per_event, accepted=events, load1=load1,
                      drained_seconds=drained)
        self.steps.append(s)
        say(f"{self.label} step ({seconds}s): {s.brief()}; {s.usage()}; load {load1}")
        time.sleep(1.0)
        return s

    def bisection(self) -> str:
        return "; ".join(f"{s.rate:,.0f} {'ok' if s.bounded else 'no'}" for s in self.steps[:-1])

    def step_records(self) -> list[dict[str, Any]]:
        return [{"rate": s.rate, "answered": s.wrk.rate, "lag": s.pending,
                 "bounded": s.bounded, "p50_ms": s.wrk.p50_ms, "p99_ms": s.wrk.p99_ms,
                 "load1": s.load1, "accepted": s.accepted,
                 **{f"cpu_{role}": v for role, v in s.cpu.items()},
                 **{f"wait_{role}": v for role, v in s.wait.items()},
                 **{f"cpu_per_event_{role}": v for role, v in s.cpu_per_event.items()}}
                for s in self.steps]


def run(ctx: Context) -> list[Figure]:
    p = ctx.profile
    bootstrap = ctx.broker.bootstrap
    tag = uuid.uuid4().hex[:6]
    topic = new_topic(bootstrap, f"bench.e2e.{tag}", PARTITIONS)
    group = f"bench-e2e-{tag}"
    ingest_dir = str(ctx.scratch("e2e-kafka-ingest"))
    store_dir = str(ctx.scratch("e2e-kafka-sessionizer"))
    add_site(ingest_dir)  # sites + salts for ingest (migrates first)
    add_site(store_dir)  # the sessionizer's store: migrated, the site as a shared store has it
    kafka_env = {"CLICKPORT_TRANSPORT": "kafka", "CLICKPORT_STORE": "chdb",
                 "CLICKPORT_KAFKA_BOOTSTRAP": bootstrap, "CLICKPORT_KAFKA_TOPIC": topic,
                 "CLICKPORT_KAFKA_GROUP": group, **PRODUCT_ENV}
    logs = ctx.scratch("logs")
    port = free_port()
    ingest = Server("e2e-kafka-ingest", [CLICKPORT, "ingest", "--port", str(port)], port,
                    env=child_env(CLICKPORT_DATA_DIR=ingest_dir, **kafka_env), log_dir=logs,
                    ready_path="/readyz")
    port = free_port()
    sessionizer = Server("e2e-kafka-sessionizer", [CLICKPORT, "sessionizer", "--port", str(port)],
                         port, env=child_env(CLICKPORT_DATA_DIR=store_dir, **kafka_env),
                         log_dir=logs, ready_path="/readyz")
    bodies = BodyFile(session_bodies(4000))
    probe: LagProbe | None = None
    try:
        say(f"e2e kafka: topic {topic}, group {group}; ingest and sessionizer on core 1")
        sessionizer.start()
        ingest.start()
        probe = LagProbe(bootstrap, topic, group)
        assert ingest.proc is not None and sessionizer.proc is not None
        pipe = KafkaPipeline("e2e kafka", probe, bodies, [ingest.base], [sessionizer.base],
                            {"ingest": [ingest.proc.pid],
                             "sessionizer": [sessionizer.proc.pid]})
        pipe.wrk(2, 16)  # warm-up
        pipe.drain()
        top = pipe.wrk(max(3, p.e2e_step_seconds // 3), 256)
        say(f"e2e kafka: closed-loop maximum of clickport ingest (sessionizer consuming on "
            f"the same core): {top.brief()}")
        pipe.drain()
        confirm = search(pipe.step, top.rate, p)
        body = ingest.get_json("/readyz")
        accepted, unavailable = int(body["accepted"]), int(body["unavailable"])
        dropped = int(metric([ingest.base], "clickport_ingest_dropped_total"))
        ses = [sessionizer.base]
        written = int(metric(ses, "clickport_sessionizer_events_written_total"))
        replayed = int(metric(ses, "clickport_sessionizer_replayed_skipped_total"))
        corrupt = int(metric(ses, "clickport_sessionizer_corrupt_total"))
        final_lag = probe.lag()
    finally:
        if probe is not None:
            probe.close()
        ses_rc = sessionizer.stop()
        ing_rc = ingest.stop()
        bodies.close()
    counts = stored_events(store_dir)
    fraction = counts["rows"] / accepted if accepted else 0.0
    n2xx = pipe.n2xx
    say(f"e2e kafka: 2xx read by wrk {n2xx:,}, answered 202 (accepted) {accepted:,}, "
        f"503 {unavailable}, dropped {dropped}, sessionizer wrote {written:,} (replays "
        f"skipped {replayed}, corrupt {corrupt}), lag at the end {final_lag}, exit codes "
        f"sessionizer {ses_rc} ingest {ing_rc}; stored rows {counts['rows']:,} (distinct "
        f"ids {counts['ids']:,}): fraction {fraction:.4f}")
    cmd = ctx.command("e2e_kafka")
    held = confirm.rate if confirm.bounded else 0.0
    per_table = confirm.inserts / 2 / confirm.seconds
    where = "clickport ingest + clickport sessionizer on Kafka, both on core 1"
    return [
        Figure(id="e2e_kafka.sustained_rate", stage="4 end to end",
               name=f"highest offered rate with bounded consumer lag (broker's committed "
                    f"offsets), {where}, held {confirm.seconds} s", unit="ev/s", runs=[held],
               target="(report)", command=cmd,
               note=(f"{confirm.brief()}; core 1 {confirm.usage()}; closed-loop maximum of "
                     f"ingest {top.rate:,.0f}/s; bisection: {pipe.bisection()}; 1-min load "
                     f"average after each step: {', '.join(s.load1 for s in pipe.steps)}"),
               extra={"steps": pipe.step_records(), "topic_partitions": PARTITIONS}),
        Figure(id="e2e_kafka.stored_fraction", stage="4 end to end",
               name="fraction of 2xx events stored over Kafka (events FINAL in the "
                    "sessionizer's chDB / events ingest answered 202)",
               unit="", runs=[fraction], target="== 1.000", judge="value == 1.0",
               command=cmd,
               note=(f"{counts['rows']:,} rows ({counts['ids']:,} distinct event ids: "
                     f"{counts['rows'] - counts['ids']} duplicates) for {accepted:,} events "
                     f"answered 202 (wrk read {n2xx:,} of those answers); "
                     f"503 {unavailable}; dropped {dropped or 'none'}; sessionizer wrote "
                     f"{written:,} event rows, skipped {replayed} replays, {corrupt} corrupt"),
               extra={"counts": counts, "n2xx": n2xx, "accepted": accepted,
                      "unavailable": unavailable, "dropped": dropped, "written": written,
                      "replayed_skipped": replayed, "corrupt": corrupt}),
        delay_figure("e2e_kafka.batch_delay", "beacon to dashboard over Kafka", confirm, cmd),
        Figure(id="e2e_kafka.inserts_per_table", stage="3 store",
               name=f"INSERTs per table per second, Kafka sessionizer at a steady "
                    f"{confirm.rate:,.0f} ev/s for {confirm.seconds} s", unit="/s/table",
               runs=[per_table], target="<= 1", judge="value <= 1", command=cmd,
               note=(f"{confirm.inserts} INSERT statements (events + sessions), from "
                     "clickport_sessionizer_inserts_total over the run")),
    ]

