"""`KafkaDeadLetters`: the dead-letter place on Kafka, the topic ``<topic>.dlq``.

- One partition: dead letters are rare, and one sequence of offsets lets `replay` and `drop`
  act on "every entry below offset N", and an entry's id be its offset. Kept until replayed or
  dropped (``retention.ms=-1``); settled entries are then deleted from the log.
- An entry is the original message: value and key as they were, headers with the reason, the
  detail, the original topic, partition and offset, and the time it was set aside.
- `put` is one Kafka transaction holding the entries *and* the consumer group's offset commit,
  so the batch is either set aside and committed, or neither (then it is consumed again).
- What is settled (replayed or dropped) is the committed offset of the fixed group
  ``<topic>.dlq.settled``, which no consumer joins. `replay` publishes the entries onto the
  main topic and commits that group's offset in one transaction; `drop` commits the offset
  alone. Both use the fixed transactional id ``<topic>.dlq.replay``, so a second one started
  while another runs fences it (the broker aborts the first one's transaction), and each
  reads what is settled only after that, so no entry is replayed or dropped twice.
- Everything is read with ``isolation_level=read_committed``: an aborted put or replay is
  never seen, here or by the sessionizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import KafkaError

from services.core.transport import DeadLetter, SetAside, TransportError

log = logging.getLogger("clickport.kafka")

PARTITION = 0
# Kafka aborts a transaction left open this long (a killed replay): read_committed readers of
# its partitions wait at most this, and the next replay or drop aborts it at once.
TRANSACTION_TIMEOUT_MS = 60_000
_HEADER = "clickport-"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


def settled_group(topic: str) -> str:
    return f"{topic}.dlq.settled"


class KafkaDeadLetters:
    def __init__(self, bootstrap: str, topic: str, partitioner: Any,
                 timeout_s: float = 30.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.dlq_topic = dead_letter_topic(topic)
        self.group = settled_group(topic)
        self._tp = TopicPartition(self.dlq_topic, PARTITION)
        self._partitioner = partitioner  # the main topic's: a replayed event keeps its partition
        self._timeout_s = timeout_s
        # One id per handle: a put retried on a new producer fences the one that failed.
        self._put_id = f"{self.dlq_topic}.put.{uuid.uuid4().hex[:12]}"
        self._putter: AIOKafkaProducer | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._counted: tuple[int, int, int] | None = None  # (start, end, entries) last counted

    async def put(self, aside: Sequence[SetAside], *, group: str,
                  offsets: Mapping[int, int]) -> None:
        at_ms = str(int(time.time() * 1000)).encode()
        try:
            async with asyncio.timeout(self._timeout_s):
                producer = await self._put_producer()
                async with producer.transaction():
                    for part in aside:
                        common = [(_HEADER + "reason", part.reason.encode()),
                                  (_HEADER + "detail", part.detail.encode()),
                                  (_HEADER + "topic", self.topic.encode()),
                                  (_HEADER + "at-ms", at_ms)]
                        for m in part.messages:
                            await producer.send(
                                self.dlq_topic, m.value, key=m.key, partition=PARTITION,
                                headers=[*common, (_HEADER + "partition", b"%d" % m.partition),
                                         (_HEADER + "offset", b"%d" % m.offset)])
                    if offsets:
                        await producer.send_offsets_to_transaction(
                            {TopicPartition(self.topic, p): o for p, o in offsets.items()},
                            group)
        except (KafkaError, TimeoutError) as exc:
            await self._close_putter()
            raise TransportError(f"cannot set messages aside on {self.dlq_topic}: {exc!r}"
                                 ) from exc

    async def pending(self) -> int:
        async with self._errors("count the dead letters"):
            reader = await self._shared_reader()
            start, end = await self._range(reader)
            if start >= end:
                return 0
            # Offsets overcount: every put's commit marker takes one. So the entries are
            # counted by reading them, again only when the range moved.
            if self._counted is None or self._counted[:2] != (start, end):
                self._counted = (start, end, len(await self._read(reader, start, end)))
            return self._counted[2]

    async def entries(self, limit: int) -> list[DeadLetter]:
        async with self._errors("read the dead letters"), self._reader_for_one_call() as reader:
            start, end = await self._range(reader)
            records = await self._read(reader, start, end, limit)
            return [_letter(r) for r in records]

    async def replay(self, upto: int | None = None) -> int:
        async with self._errors("replay the dead letters"), self._settler() as (producer, reader):
            start, stop = await self._range(reader, upto)
            records = await self._read(reader, start, stop) if start < stop else []
            if not records:
                return 0
            seen: set[tuple[bytes, ...]] = set()
            async with producer.transaction():
                for record in records:
                    origin = _origin(record)
                    if origin in seen:
                        # set aside twice: a put whose success was not heard, retried
                        continue
                    seen.add(origin)
                    await producer.send(self.topic, record.value, key=record.key)
                await producer.send_offsets_to_transaction({self._tp: stop}, self.group)
            if len(seen) < len(records):
                log.info("replay skipped %d duplicate dead letters", len(records) - len(seen))
        await self._forget(stop)
        return len(seen)

    async def drop(self, upto: int | None = None) -> int:
        async with self._errors("drop the dead letters"), self._settler() as (producer, reader):
            start, stop = await self._range(reader, upto)
            count = len(await self._read(reader, start, stop)) if start < stop else 0
            if not count:
                return 0
            async with producer.transaction():
                await producer.send_offsets_to_transaction({self._tp: stop}, self.group)
        await self._forget(stop)
        return count

    async def close(self) -> None:
        await self._close_putter()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            with contextlib.suppress(KafkaError):
                await reader.stop()

    @contextlib.asynccontextmanager
    async def _errors(self, what: str) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                yield
        except (KafkaError, TimeoutError) as exc:
            raise TransportError(f"cannot {what} on {self.dlq_topic}: {exc!r}") from exc

    async def _put_producer(self) -> AIOKafkaProducer:
        if self._putter is None:
            producer = self._producer(self._put_id)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._putter = producer
        return self._putter

    async def _close_putter(self) -> None:
        if self._putter is not None:
            producer, self._putter = self._putter, None
            with contextlib.suppress(KafkaError):
                await producer.stop()

    def _producer(self, transactional_id: str) -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                enable_idempotence=True, transactional_id=transactional_id,
                                transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
                                partitioner=self._partitioner,
                                request_timeout_ms=int(self._timeout_s * 1000))

    def _new_reader(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group,
                                enable_auto_commit=False, isolation_level="read_committed",
                                auto_offset_reset="earliest",
                                request_timeout_ms=int(self._timeout_s * 1000))

    async def _shared_reader(self) -> AIOKafkaConsumer:
        """The long-lived reader of `pending` (the sessionizer asks every few seconds)."""
        if self._reader is None:
            reader = self._new_reader()
            await reader.start()
            reader.assign([self._tp])
            self._reader = reader
        return self._reader

    @contextlib.asynccontextmanager
    async def _reader_for_one_call(self) -> Any:
        reader = self._new_reader()
        await reader.start()
        try:
            reader.assign([self._tp])
            yield reader
        finally:
            await reader.stop()

    @contextlib.asynccontextmanager
    async def _settler(self) -> Any:
        """The replay/drop producer, started before anything is read: starting it fences an
        earlier one and ends its transaction, so what is settled can be read after it."""
        producer = self._producer(f"{self.dlq_topic}.replay")
        try:
            await producer.start()
            async with self._reader_for_one_call() as reader:
                yield producer, reader
        finally:
            await producer.stop()

    async def _range(self, reader: AIOKafkaConsumer, upto: int | None = None
                     ) -> tuple[int, int]:
        """[first unsettled offset, end): the end is the last stable offset (read_committed),
        cut after ``upto``."""
        committed = await reader.committed(self._tp)
        first = (await reader.beginning_offsets([self._tp]))[self._tp]
        end = (await reader.end_offsets([self._tp]))[self._tp]
        start = max(first, committed or 0)
        return start, end if upto is None else min(end, upto + 1)

    async def _read(self, reader: AIOKafkaConsumer, start: int, stop: int,
                    limit: int | None = None) -> list[Any]:
        """The committed records with offsets in [start, stop), at most ``limit``."""
        found: list[Any] = []
        reader.seek(self._tp, start)
        while await reader.position(self._tp) < stop and (limit is None or len(found) < limit):
            batches = await reader.getmany(self._tp, timeout_ms=500, max_records=10_000)
            found += [r for r in batches.get(self._tp, []) if r.offset < stop]
        return found if limit is None else found[:limit]

    async def _forget(self, before: int) -> None:
        """Delete settled entries from the log (they hold page URLs and visitor ids). Best
        effort: what stays is settled all the same, and goes with the topic."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            async with asyncio.timeout(self._timeout_s):
                await admin.start()
                await admin.delete_records({self._tp: RecordsToDelete(before_offset=before)})
        except (KafkaError, TimeoutError) as exc:
            log.warning("settled dead letters below %d stay in %s: %r", before,
                        self.dlq_topic, exc)
        finally:
            with contextlib.suppress(KafkaError):
                await admin.close()


def _headers(record: Any) -> dict[str, bytes]:
    return {name[len(_HEADER):]: value for name, value in record.headers or ()
            if name.startswith(_HEADER)}


def _origin(record: Any) -> tuple[bytes, ...]:
    h = _headers(record)
    return h.get("topic", b""), h.get("partition", b""), h.get("offset", b"")


def _letter(record: Any) -> DeadLetter:
    h = _headers(record)
    return DeadLetter(id=record.offset, reason=h.get("reason", b"").decode(),
                      detail=h.get("detail", b"").decode(errors="replace"),
                      partition=int(h.get("partition", b"-1")),
                      offset=int(h.get("offset", b"-1")),
                      at_ms=int(h.get("at-ms", b"%d" % record.timestamp)),
                      key=record.key or b"", value=record.value or b"")
