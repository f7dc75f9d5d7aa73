"""`KafkaTransport`: the production Transport on Apache Kafka (aiokafka).

Producer: idempotent, ``acks=all``, compressed, batched with a small linger, keyed by session
id (aiokafka's default partitioner is Kafka's murmur2, so a session stays on one partition).
`publish` returns only after the broker acknowledged the message; it gives up with
`TransportError` after ``publish_timeout_s`` or when ``max_in_flight`` sends are already
waiting (a broker outage fills that bound quickly), so ingest answers 503 instead of hanging.

Consumer: a group member with auto-commit off; the sessionizer commits ``offset + 1`` after
its Store write. The rebalance listener forwards revocations and assignments to the
sessionizer, which flushes and commits on revoke (aiokafka allows commits there). It reads
with ``isolation_level=read_committed``, so a dead-letter replay (a transaction,
`services.adapters.kafka_dead_letters`) is seen whole or, aborted, not at all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from services.adapters.kafka_dead_letters import KafkaDeadLetters, dead_letter_topic
from services.core.transport import (
    AssignmentCallback,
    Message,
    TransportError,
    TransportFull,
    stream_id,
)

log = logging.getLogger("clickport.kafka")


class SessionPartitioner:
    """aiokafka's `DefaultPartitioner` (Kafka's murmur2 of the key, so a session keeps its
    partition) with the hash of recent keys remembered: aiokafka's murmur2 is pure Python
    (~4 us), and a session's events, all keyed by its id, arrive within minutes. Ingest
    always publishes with a key."""

    def __init__(self, remembered: int = 16_384) -> None:
        self._hash = functools.lru_cache(maxsize=remembered)(murmur2)

    def __call__(self, key: bytes, all_partitions: Sequence[int],
                 available: Sequence[int]) -> int:
        return all_partitions[(int(self._hash(key)) & 0x7FFFFFFF) % len(all_partitions)]


class KafkaTransport:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        compression: str | None = "gzip",
        linger_ms: int = 1,
        publish_timeout_s: float = 10.0,
        max_in_flight: int = 20_000,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.compression = compression
        self.linger_ms = linger_ms
        self.publish_timeout_s = publish_timeout_s
        self.max_in_flight = max_in_flight
        self._producer: AIOKafkaProducer | None = None
        self._in_flight = 0

    def describe(self) -> str:
        return f"kafka {self.bootstrap} topic {self.topic}"

    async def start(self) -> None:
        """Start the producer (ingest only; a sessionizer needs just `consumer`)."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,
            acks="all",
            compression_type=self.compression,
            linger_ms=self.linger_ms,
            max_batch_size=256 * 1024,
            partitioner=SessionPartitioner(),
            request_timeout_ms=int(self.publish_timeout_s * 1000),
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise TransportError(f"cannot reach Kafka at {self.bootstrap}: {exc}") from exc
        self._producer = producer

    def in_flight(self) -> int:
        return self._in_flight

    async def publish(self, key: bytes, value: bytes) -> None:
        if self._producer is None:
            raise TransportError("Kafka producer is not started")
        if self._in_flight >= self.max_in_flight:
            raise TransportFull(f"{self._in_flight} events already waiting for Kafka")
        self._in_flight += 1
        try:
            # asyncio.timeout, not wait_for: no extra task per request on the hot path
            async with asyncio.timeout(self.publish_timeout_s):
                await self._producer.send_and_wait(self.topic, value, key=key)
        except (KafkaError, TimeoutError) as exc:
            raise TransportError(f"Kafka did not acknowledge the event: {exc!r}") from exc
        finally:
            self._in_flight -= 1

    def consumer(
        self, group: str, on_assigned: AssignmentCallback, on_revoked: AssignmentCallback
    ) -> KafkaConsumer:
        return KafkaConsumer(self.bootstrap, self.topic, group, on_assigned, on_revoked)

    def dead_letters(self) -> KafkaDeadLetters:
        return KafkaDeadLetters(self.bootstrap, self.topic, SessionPartitioner())

    async def stop(self) -> None:
        """Flush what the producer holds (ingest drains on SIGTERM), then close."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_assigned: AssignmentCallback, on_revoked: AssignmentCallback) -> None:
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            await self._on_revoked(frozenset(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._on_assigned(frozenset(tp.partition for tp in assigned))


class KafkaConsumer:
    def __init__(self, bootstrap: str, topic: str, group: str,
                 on_assigned: AssignmentCallback, on_revoked: AssignmentCallback) -> None:
        self.topic = topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=10_000,
            isolation_level="read_committed",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )
        self._listener = _Listener(on_assigned, on_revoked)

    async def start(self) -> None:
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise TransportError(f"cannot start the Kafka consumer: {exc}") from exc
        self._consumer.subscribe([self.topic], listener=self._listener)

    def assignment(self) -> frozenset[int]:
        return frozenset(tp.partition for tp in self._consumer.assignment())

    async def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000),
                                               max_records=max_records)
        return [Message(tp.partition, r.offset, r.key or b"", r.value or b"",
                        stream_id(tp.topic, tp.partition))
                for tp, records in batches.items() for r in records]

    async def commit(self, offsets: Mapping[int, int]) -> None:
        if not offsets:
            return
        try:
            await self._consumer.commit(
                {TopicPartition(self.topic, p): o for p, o in offsets.items()})
        except KafkaError as exc:
            # A commit that fails (e.g. the partition moved in a rebalance) is safe: the
            # next owner replays from the last commit and the replay changes nothing.
            log.warning("offset commit failed, the batch will be replayed: %r", exc)

    async def lag(self) -> int:
        """Messages between this member's positions and the high watermarks it has seen."""
        total = 0
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is not None:
                total += max(0, high - await self._consumer.position(tp))
        return total

    async def stop(self) -> None:
        await self._consumer.stop()


async def create_topic(bootstrap: str, topic: str, partitions: int,
                       replication: int = 1, configs: Mapping[str, str] | None = None) -> bool:
    """Create a topic; True if created, False if it already existed (idempotent). aiokafka
    reports per-topic errors in the response rather than raising them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, replication,
                                                       topic_configs=dict(configs or {}))])
    finally:
        await admin.close()
    for name, code, *detail in response.topic_errors:
        if name != topic or code == 0:
            continue
        if code == TopicAlreadyExistsError.errno:
            return False
        raise TransportError(f"cannot create topic {topic}: error {code} {detail}")
    return True


# The dead-letter topic: one partition (docs/delivery.md), kept until replayed or dropped.
DEAD_LETTER_PARTITIONS = 1
DEAD_LETTER_CONFIGS = {"retention.ms": "-1"}


async def create_dead_letter_topic(bootstrap: str, topic: str, replication: int = 1) -> bool:
    """Create ``<topic>.dlq`` for the events topic ``topic`` (idempotent, as `create_topic`)."""
    return await create_topic(bootstrap, dead_letter_topic(topic), DEAD_LETTER_PARTITIONS,
                              replication, DEAD_LETTER_CONFIGS)
