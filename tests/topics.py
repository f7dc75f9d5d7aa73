"""Reading a whole Kafka topic from the start with a group-less consumer, for tests that
compare what was stored with what was published."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition

Record = tuple[int, int, bytes, bytes]  # partition, offset, key, value


async def read_topic(bootstrap: str, topic: str, partitions: int,
                     isolation_level: str = "read_uncommitted",
                     seconds: float = 120.0) -> list[Record]:
    """Every record up to the end offsets seen at the start (at most ``seconds`` of reading)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level=isolation_level)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found: list[Record] = []
        deadline = time.monotonic() + seconds

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in parts])

        while await behind() and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found += [(tp.partition, r.offset, r.key or b"", r.value or b"")
                          for r in records]
        return found
    finally:
        await consumer.stop()
