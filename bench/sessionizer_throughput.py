"""Benchmark 2a, sessionizer: events/s from Kafka through session state and goals into chDB,
against a raw aiokafka consume-and-decode loop over the same topic.

Setup (once): a 12-partition topic on the local broker, pre-filled with N realistic events
(`bench.workload.events`: five per session, gzip-compressed batches as the ingest producer
sends), keyed by session id.

Per round, two child processes on core 1, one after the other (the broker stays on core 0):

- ``raw``: `AIOKafkaConsumer` in a new group (auto-commit off, ``max_poll_records`` 10,000
  as `KafkaConsumer`), ``getmany`` + `decode_event` for every message until N are decoded.
- ``sessionizer``: the real `Sessionizer` on `KafkaTransport` and a fresh `ChdbStore`
  (migrated; the site and 20 goals registered), the product's default batch settings
  (`Settings`: 20,000 events or 1 s), until N event rows are written and their sessions'
  rows too.

Both clocks start when the first non-empty poll returns (so the group join is not counted)
and stop when the N-th event is decoded (raw) or its rows are in the Store (sessionizer).
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

from bench.common import PYTHON, Context, Figure, paired_ratios, run_json, say
from bench.kafka import new_topic
from bench.workload import SITE

PARTITIONS = 12


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
    first = 0.0
    try:
        while decoded < count:
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            if batches and not first:
                first = time.perf_counter()
            for records in batches.values():
                for record in records:
                    decode_event(record.value or b"")
                    decoded += 1
        seconds = time.perf_counter() - first
    finally:
        await consumer.stop()
    return {"events": decoded, "seconds": seconds}


async def sessionizer_child(bootstrap: str, topic: str, count: int,
                            directory: pathlib.Path) -> dict[str, Any]:
    from services.adapters.chdb_store import ChdbStore
    from services.adapters.kafka_transport import KafkaTransport
    from services.core.settings import Settings
    from services.core.sites import add_site
    from services.sessionizer.worker import Sessionizer

    store = ChdbStore(directory / "chdb")
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
    worker.stop()
    await task
    stats = dict(worker.stats.__dict__)
    stored = store.query("SELECT count() AS n FROM events FINAL")[0]["n"]
    converted = store.query(
        "SELECT countIf(length(goals) > 0) AS n FROM events FINAL")[0]["n"]
    store.close()
    return {"events": stats["events_written"], "seconds": seconds, "stats": stats,
            "stored": int(stored), "events_with_goals": int(converted),
            "goals": len(worker.goals)}


def run(ctx: Context) -> list[Figure]:
    p = ctx.profile
    n = p.sessionizer_events
    bootstrap = ctx.broker.bootstrap
    topic = new_topic(bootstrap, f"bench.sessionizer.{uuid.uuid4().hex[:6]}", PARTITIONS)
    say(f"sessionizer: pre-filling {topic} with {n:,} events")
    t0 = time.monotonic()
    asyncio.run(prefill(bootstrap, topic, n))
    say(f"sessionizer: pre-filled in {time.monotonic() - t0:.1f}s")
    raw: list[float] = []
    ses: list[float] = []
    details: list[dict[str, Any]] = []
    for round_no in range(1, p.rounds + 1):
        r = run_json([PYTHON, "-m", "bench.sessionizer_throughput", "raw", "--bootstrap",
                      bootstrap, "--topic", topic, "--count", str(n)])
        raw.append(r["events"] / r["seconds"])
        directory = ctx.scratch(f"sessionizer-{round_no}")
        s = run_json([PYTHON, "-m", "bench.sessionizer_throughput", "sessionizer",
                      "--bootstrap", bootstrap, "--topic", topic, "--count", str(n),
                      "--dir", str(directory)])
        ses.append(s["events"] / s["seconds"])
        details.append(s)
        if s["stored"] != n:
            raise RuntimeError(f"sessionizer stored {s['stored']} events, expected {n}")
        say(f"sessionizer round {round_no}: raw {raw[-1]:,.0f} ev/s | sessionizer "
            f"{ses[-1]:,.0f} ev/s | ratio {ses[-1] / raw[-1]:.3f} | inserts "
            f"{s['stats']['inserts']}, insert time {s['stats']['insert_seconds_total']:.1f}s "
            f"of {s['seconds']:.1f}s, events with goals {s['events_with_goals']:,}")
    last = details[-1]
    insert_share = [d["stats"]["insert_seconds_total"] / d["seconds"] for d in details]
    return [Figure(
        id="sessionizer.throughput", stage="2 sessionizer",
        name=f"events/s Kafka -> session state + 20 goals -> chDB ({n:,} events, "
             f"{PARTITIONS} partitions)",
        unit="ev/s", runs=ses, baseline_name="raw aiokafka consume + decode",
        baseline_runs=raw, ratios=paired_ratios(ses, raw), target=">= 0.5 x raw",
        judge="ratio >= 0.5", command=ctx.command("sessionizer"),
        note=(f"Store inserts took {min(insert_share):.0%}-{max(insert_share):.0%} of the "
              f"sessionizer's time; {last['stats']['inserts']} inserts, "
              f"{last['events_with_goals']:,} events matched goals"),
        extra={"details": details})]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["raw", "sessionizer"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--dir", type=pathlib.Path)
    args = parser.parse_args()
    if args.mode == "raw":
        result = asyncio.run(raw_child(args.bootstrap, args.topic, args.count))
    else:
        result = asyncio.run(sessionizer_child(args.bootstrap, args.topic, args.count,
                                               args.dir))
    print(json.dumps(result))


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    main()
