"""The real local Kafka broker for the benchmarks (tests/kafka_broker.py: Apache Kafka jars
from Maven, KRaft, loopback, a temp data dir). It inherits the orchestrator's core (0), so
it never shares the core of the stage under test."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bench.common import ROOT, say


def start_broker() -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    import kafka_broker

    say("Kafka broker: fetching jars if needed, starting (pinned with the load generators)")
    libs = kafka_broker.ensure_kafka_libs()
    broker = kafka_broker.start_local_broker(libs)
    say(f"Kafka broker ready at {broker.bootstrap}")
    return broker


def new_topic(bootstrap: str, name: str, partitions: int) -> str:
    from services.adapters.kafka_transport import create_topic

    asyncio.run(create_topic(bootstrap, name, partitions))
    return name
