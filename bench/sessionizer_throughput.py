"""Benchmark 2a, sessionizer: events/s from Kafka through session state and goals into the
Store, against a raw aiokafka consume-and-decode loop over the same topic; the Store is chDB
(in-process) and, in the same rounds, a ClickHouse server (another process).

Setup (once): a 12-partition topic on the local broker, pre-filled with N realistic events
(`bench.workload.events`: five per session, gzip-compressed batches as the ingest producer
sends), keyed by session id; and a ClickHouse server (tests/clickhouse_server.py) pinned to
core 0, with the broker and the orchestrator: it is the Store, a service of its own as in
production, so the sessionizer under test keeps core 1 to itself (bench/README.md, 2a).

Per round, four child processes on core 1, one after the other (the broker stays on core 0):

- ``raw``: `AIOKafkaConsumer` in a new group (auto-commit off, ``max_poll_records`` 10,000
  as `KafkaConsumer`), ``getmany`` + `decode_event` for every message until N are decoded.
- ``sessionizer``: the real `Sessionizer` on `KafkaTransport` and a fresh `ChdbStore`
  (migrated; the site and 20 goals registered), the product's default batch settings
  (`Settings`: 20,000 events or 1 s), until N event rows are written and their sessions'
  rows too.
- ``raw`` again, then ``sessionizer --clickhouse-url``: the same on a `ClickHouseStore` in a
  fresh database of the server (dropped after the round, so that its merges cannot run in
  a later round).

Both clocks start when the first non-empty poll returns (so the group join is not counted)
and stop when the N-th event is decoded (raw) or its rows are in the Store (sessionizer).
Between the same two instants each child reads its own CPU time (all its threads: with
chDB, the engine's too) and, on the server, the server process's (``/proc/PID/stat``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
import time
import uuid
from typing import Any

from bench.clickhouse import drop_database, local_server, server_pid
from bench.common import (
    CLIENT_CORE,
    PYTHON,
    Context,
    Figure,
    cpu_seconds,
    paired_ratios,
    run_json,
    say,
)
from bench.kafka import new_topic
from bench.workload import SITE

PARTITIONS = 12
# The ClickHouse server's core: with the broker and the orchestrator, off the sessionizer's
# (bench/README.md, 2a says why).
SERVER_STORE_CORE = CLIENT_CORE


def goal_rows(site: str) -> list[dict[str, Any]]:
    """20 goals of every type and operator, as the API would store them."""
    specs = [
        ("click", [("domain", "contains", "amazon")]),
        ("click", [("url", "contains", "/dp/")]),
        ("click", [("text", "contains", "price")]),
        ("click", [("asin", "is_not_empty", "")]),
        ("click", [("domain", "equals", "shop1.example")]),
        ("click", [("domain", "ends_with", ".example"), ("text", "contains", "deal")]),
        ("click", [("url", "starts_with", "https://www.shop2.example/")]),
        ("click", [("domain", "not_contains", "amazon"), ("url", "contains", "ref=")]),
        ("click", [("text", "equals", "Buy now")]),
        ("click", [("domain", "contains", "ebay")]),
        ("pageview", [("path", "starts_with", "/reviews/")]),
        ("pageview", [("path", "equals", "/deals/black-friday-laptops")]),
        ("pageview", [("path", "contains", "espresso")]),
        ("pageview", [("path", "ends_with", "-2025")]),
        ("pageview", [("path", "starts_with", "/compare/")]),
        ("pageview", [("path", "not_contains", "blog")]),
        ("custom", [("name", "equals", "signup")]),
        ("custom", [("name", "equals", "newsletter")]),
        ("custom", [("name", "starts_with", "video_")]),
        ("click", [("domain", "contains", "walmart")]),
    ]
    now = time.time_ns()
    rows = []
    for i, (kind, conditions) in enumerate(specs):
        rows.append({
            "site_id": site, "goal_id": uuid.UUID(int=i + 1).hex, "name": f"goal {i}",
            "type": kind, "logic": "all", "is_conversion": int(i % 4 != 3),
            "conditions": json.dumps([{"field": f, "operator": o, "value": v}
                                      for f, o, v in conditions]),
            "created_at": now // 1_000_000, "version": now + i, "deleted": 0})
    return rows


async def prefill(bootstrap: str, topic: str, count: int) -> None:
    from aiokafka import AIOKafkaProducer

    from bench.workload import events
    from services.core.event import encode_event

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                compression_type="gzip", max_batch_size=256 * 1024)
    await producer.start()
    try:
        pending = []
        for event in events(count):
            pending.append(await producer.send(topic, encode_event(event),
                                               key=event.sid.encode()))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def raw_child(bootstrap: str, topic: str, count: int) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer

    from services.core.event import decode_event

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                group_id=f"raw-{uuid.uuid4().hex[:8]}",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=10_000)
    await consumer.start()
    decoded = 0
    first = cpu_first = 0.0
    try:
        while decoded < count:
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            if batches and not first:
                first, cpu_first = time.perf_counter(), time.process_time()
            for records in batches.values():
                for record in records:
                    decode_event(record.value or b"")
                    decoded += 1
        seconds = time.perf_counter() - first
        cpu = time.process_time() - cpu_first
    finally:
        await consumer.stop()
    return {"events": decoded, "seconds": seconds, "cpu_seconds": cpu}


async def sessionizer_child(bootstrap: str, topic: str, count: int,
                            directory: pathlib.Path | None, clickhouse_url: str = "",
                            server: int = 0) -> dict[str, Any]:
    """The sessionizer into chDB in ``directory``, or into the ClickHouse server at
    ``clickhouse_url`` whose process is ``server`` (its CPU time is read from /proc)."""
    from services.adapters.chdb_store import ChdbStore
    from services.adapters.clickhouse_store import ClickHouseStore
    from services.adapters.kafka_transport import KafkaTransport
    from services.core.settings import Settings
    from services.core.sites import add_site
    from services.core.store import Store
    from services.sessionizer.worker import Sessionizer

    assert clickhouse_url or directory is not None
    store: Store = (ClickHouseStore(clickhouse_url) if clickhouse_url
                    else ChdbStore(pathlib.Path(str(directory)) / "chdb"))
    store.migrate()
    add_site(store, SITE)
    store.insert("goals", goal_rows(SITE))
    transport = KafkaTransport(bootstrap, topic)
    clock: dict[str, float] = {}
    make_consumer = transport.consumer

    def timed_consumer(*args: Any) -> Any:  # the first non-empty poll starts the clock
        consumer = make_consumer(*args)
        poll = consumer.poll

        async def first_poll(max_records: int, timeout_s: float) -> Any:
            messages = await poll(max_records, timeout_s)
            if messages and "first" not in clock:
                clock["first"] = time.perf_counter()
                clock["cpu"] = time.process_time()
                clock["server_cpu"] = cpu_seconds(server) if server else 0.0
            return messages

        consumer.poll = first_poll  # type: ignore[method-assign]
        return consumer

    transport.consumer = timed_consumer  # type: ignore[method-assign]
    defaults = Settings()  # what a deployed sessionizer runs with unless told otherwise
    worker = Sessionizer(transport, store, group=f"ses-{uuid.uuid4().hex[:8]}",
                         batch_max_events=defaults.batch_max_events,
                         batch_max_seconds=defaults.batch_max_seconds,
                         idle_seconds=defaults.session_idle_seconds)
    task = asyncio.create_task(worker.run())
    while worker.stats.events_written < count:
        if task.done():
            task.result()
            raise RuntimeError("the sessionizer stopped early")
        await asyncio.sleep(0.002)
    seconds = time.perf_counter() - clock["first"]
    cpu = time.process_time() - clock["cpu"]
    server_cpu = cpu_seconds(server) - clock["server_cpu"] if server else 0.0
    worker.stop()
    await task
    stats = dict(worker.stats.__dict__)
    stored = store.query("SELECT count() AS n FROM events FINAL")[0]["n"]
    converted = store.query(
        "SELECT countIf(length(goals) > 0) AS n FROM events FINAL")[0]["n"]
    store.close()
    return {"events": stats["events_written"], "seconds": seconds, "cpu_seconds": cpu,
            "server_cpu_seconds": server_cpu, "stats": stats, "stored": int(stored),
            "events_with_goals": int(converted), "goals": len(worker.goals)}


def run(ctx: Context) -> list[Figure]:
    p = ctx.profile
    n = p.sessionizer_events
    bootstrap = ctx.broker.bootstrap
    topic = new_topic(bootstrap, f"bench.sessionizer.{uuid.uuid4().hex[:6]}", PARTITIONS)
    say(f"sessionizer: pre-filling {topic} with {n:,} events")
    t0 = time.monotonic()
    asyncio.run(prefill(bootstrap, topic, n))
    say(f"sessionizer: pre-filled in {time.monotonic() - t0:.1f}s")
    raw: dict[str, list[float]] = {"chdb": [], "server": []}  # the raw run before each
    rate: dict[str, list[float]] = {"chdb": [], "server": []}
    details: dict[str, list[dict[str, Any]]] = {"chdb": [], "server": []}
    with local_server(ctx.scratch("sessionizer-clickhouse"), SERVER_STORE_CORE) as server:
        for round_no in range(1, p.rounds + 1):
            for store in ("chdb", "server"):
                r = run_json([PYTHON, "-m", "bench.sessionizer_throughput", "raw",
                              "--bootstrap", bootstrap, "--topic", topic, "--count", str(n)])
                raw[store].append(r["events"] / r["seconds"])
                where = (["--dir", str(ctx.scratch(f"sessionizer-{round_no}"))]
                         if store == "chdb" else
                         ["--clickhouse-url", server.url(f"bench_ses_{round_no}"),
                          "--server-pid", str(server_pid(server))])
                s = run_json([PYTHON, "-m", "bench.sessionizer_throughput", "sessionizer",
                              "--bootstrap", bootstrap, "--topic", topic, "--count", str(n),
                              *where])
                if store == "server":
                    drop_database(server, f"bench_ses_{round_no}")
                rate[store].append(s["events"] / s["seconds"])
                details[store].append(s)
                if s["stored"] != n:
                    raise RuntimeError(f"sessionizer on {store} stored {s['stored']} events, "
                                       f"expected {n}")
                server_cpu = (f", server CPU {us_per_event(s, 'server_cpu_seconds'):.1f} us/ev"
                              if store == "server" else "")
                say(f"sessionizer round {round_no} ({store}): raw {raw[store][-1]:,.0f} ev/s | "
                    f"sessionizer {rate[store][-1]:,.0f} ev/s | ratio "
                    f"{rate[store][-1] / raw[store][-1]:.3f} | inserts "
                    f"{s['stats']['inserts']}, insert time "
                    f"{s['stats']['insert_seconds_total']:.1f}s of {s['seconds']:.1f}s | CPU "
                    f"{us_per_event(s, 'cpu_seconds'):.1f} us/ev{server_cpu}")
    return figures(ctx, n, raw, rate, details)


def us_per_event(result: dict[str, Any], key: str) -> float:
    return float(result[key]) / int(result["events"]) * 1e6


def insert_note(details: list[dict[str, Any]]) -> str:
    share = [d["stats"]["insert_seconds_total"] / d["seconds"] for d in details]
    last = details[-1]
    return (f"Store inserts took {min(share):.0%}-{max(share):.0%} of the sessionizer's time; "
            f"{last['stats']['inserts']} inserts, {last['events_with_goals']:,} events "
            f"matched goals")


def figures(ctx: Context, n: int, raw: dict[str, list[float]], rate: dict[str, list[float]],
            details: dict[str, list[dict[str, Any]]]) -> list[Figure]:
    cmd = ctx.command("sessionizer")
    own_cpu = {store: [us_per_event(d, "cpu_seconds") for d in details[store]]
               for store in details}
    server_cpu = [us_per_event(d, "server_cpu_seconds") for d in details["server"]]
    total_cpu = [a + b for a, b in zip(own_cpu["server"], server_cpu, strict=True)]

    def throughput(store: str, figure_id: str, into: str) -> Figure:
        return Figure(
            id=figure_id, stage="2 sessionizer",
            name=f"events/s Kafka -> session state + 20 goals -> {into} ({n:,} events, "
                 f"{PARTITIONS} partitions)",
            unit="ev/s", runs=rate[store], baseline_name="raw aiokafka consume + decode",
            baseline_runs=raw[store], ratios=paired_ratios(rate[store], raw[store]),
            target=">= 0.5 x raw", judge="ratio >= 0.5", command=cmd,
            note=insert_note(details[store]), extra={"details": details[store]})

    return [throughput("chdb", "sessionizer.throughput", "chDB"), throughput(
        "server", "sessionizer.server.throughput",
        f"ClickHouse server on core {SERVER_STORE_CORE}"), Figure(
        id="sessionizer.server.server_cpu", stage="2 sessionizer",
        name=f"CPU of the ClickHouse server (core {SERVER_STORE_CORE}) per event the "
             f"sessionizer writes into it (/proc/PID/stat, first poll to last row)",
        unit="µs/ev", runs=server_cpu, target="(information)", command=cmd,
        note=f"the sessionizer process's own CPU meanwhile: "
             f"{min(own_cpu['server']):.1f}-{max(own_cpu['server']):.1f} µs/ev"), Figure(
        id="sessionizer.server.total_cpu", stage="2 sessionizer",
        name="CPU per event, sessionizer process + ClickHouse server",
        unit="µs/ev", runs=total_cpu,
        baseline_name="the sessionizer process on chDB (engine threads in-process)",
        baseline_runs=own_cpu["chdb"], ratios=paired_ratios(total_cpu, own_cpu["chdb"]),
        target="(information)", command=cmd,
        note="ratio above 1: the server path costs more CPU per event in all")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["raw", "sessionizer"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--dir", type=pathlib.Path, help="chDB's data dir")
    parser.add_argument("--clickhouse-url", default="", help="a ClickHouse server instead")
    parser.add_argument("--server-pid", type=int, default=0, help="the server's process")
    args = parser.parse_args()
    if args.mode == "raw":
        result = asyncio.run(raw_child(args.bootstrap, args.topic, args.count))
    else:
        result = asyncio.run(sessionizer_child(args.bootstrap, args.topic, args.count,
                                               args.dir, args.clickhouse_url,
                                               args.server_pid))
    print(json.dumps(result))


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    main()
