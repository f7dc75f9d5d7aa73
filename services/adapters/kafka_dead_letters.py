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
  main topic and commits that group's offset in one transaction per `REPLAY_CHUNK` entries
  (so a large backlog stays well inside the transaction timeout); `drop` commits the offset
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
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, TypeVar

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
REPLAY_CHUNK = 10_000
T = TypeVar("T")


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
        self._topic_seen = False

    async def put(self, aside: Sequence[SetAside], *, group: str,
                  offsets: Mapping[int, int]) -> None:
        at_ms = str(int(time.time() * 1000)).encode()
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._require_topic()
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
            # Offsets overcount: every put's commit marker takes one. So the entries are
            # counted by reading them: those added since the last count, or all of them once
            # some were settled.
            if self._counted is not None and self._counted[0] == start <= self._counted[1]:
                _, counted_end, count = self._counted
                count += await self._count(reader, counted_end, end)
            else:
                count = await self._count(reader, start, end)
            self._counted = (start, end, count)
            return count

    async def entries(self, limit: int) -> list[DeadLetter]:
        async with self._errors("read the dead letters"), self._reader_for_one_call() as reader:
            start, end = await self._range(reader)
            found: list[Any] = []
            async for records in self._batches(reader, start, end):
                found += records
                if len(found) >= limit:
                    break
            return [_letter(r) for r in found[:limit]]

    async def replay(self, upto: int | None = None) -> int:
        seen: set[tuple[bytes, ...]] = set()
        async with self._errors("replay the dead letters"), self._settler() as (producer, reader):
            start, stop = await self._range(reader, upto)
            chunk: list[Any] = []
            async for records in self._batches(reader, start, stop):
                chunk += records
                while len(chunk) >= REPLAY_CHUNK:
                    done, chunk = chunk[:REPLAY_CHUNK], chunk[REPLAY_CHUNK:]
                    await self._republish(producer, done, seen)
                    await producer.send_offsets_to_transaction(
                        {self._tp: done[-1].offset + 1}, self.group)
                    await self._within(producer.commit_transaction())
                    await producer.begin_transaction()
            await self._republish(producer, chunk, seen)
            if start < stop:  # to ``stop``: commit markers may follow the last entry
                await producer.send_offsets_to_transaction({self._tp: stop}, self.group)
        if start < stop:
            await self._forget(stop)
        return len(seen)

    async def drop(self, upto: int | None = None) -> int:
        async with self._errors("drop the dead letters"), self._settler() as (producer, reader):
            start, stop = await self._range(reader, upto)
            count = await self._count(reader, start, stop)
            if count:
                await producer.send_offsets_to_transaction({self._tp: stop}, self.group)
        if count:
            await self._forget(stop)
        return count

    async def close(self) -> None:
        """Bounded, like every call here: a process stopping must not wait on the broker."""
        await self._close_putter()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            with contextlib.suppress(KafkaError, TimeoutError):
                await self._within(reader.stop())

    async def _republish(self, producer: AIOKafkaProducer, records: list[Any],
                         seen: set[tuple[bytes, ...]]) -> None:
        """Send ``records`` to the main topic in the open transaction, each original once."""
        for record in records:
            origin = _origin(record)
            if origin in seen:
                # Set aside twice: a put whose commit was not heard back, retried.
                log.info("replay skips a second copy of the dead letter from %s", origin)
                continue
            seen.add(origin)
            await producer.send(self.topic, record.value, key=record.key)

    @contextlib.asynccontextmanager
    async def _errors(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except (KafkaError, TimeoutError) as exc:
            raise TransportError(f"cannot {what} on {self.dlq_topic}: {exc!r}") from exc

    async def _require_topic(self) -> None:
        """Fail with the fix when the dead-letter topic is missing, rather than let a client
        wait for it (and log each metadata refresh that does not have it)."""
        if self._topic_seen:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap,
                                    request_timeout_ms=int(self._timeout_s * 1000))
        try:
            await self._within(admin.start())
            topics = await self._within(admin.list_topics())
        finally:
            with contextlib.suppress(KafkaError):
                await admin.close()
        if self.dlq_topic not in topics:
            raise TransportError(f"the dead-letter topic {self.dlq_topic} does not exist: "
                                 "create it with clickport kafka create-topics")
        self._topic_seen = True

    async def _within(self, call: Awaitable[T]) -> T:
        """One broker call, bounded: aiokafka retries some of them for as long as the broker
        is away."""
        async with asyncio.timeout(self._timeout_s):
            return await call

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
            with contextlib.suppress(KafkaError, TimeoutError):
                await self._within(producer.stop())

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
            await self._require_topic()
            reader = self._new_reader()
            try:
                await self._within(reader.start())
            except BaseException:
                await reader.stop()
                raise
            reader.assign([self._tp])
            self._reader = reader
        return self._reader

    @contextlib.asynccontextmanager
    async def _reader_for_one_call(self) -> AsyncIterator[AIOKafkaConsumer]:
        await self._require_topic()
        reader = self._new_reader()
        try:
            await self._within(reader.start())
            reader.assign([self._tp])
            yield reader
        finally:
            await reader.stop()

    @contextlib.asynccontextmanager
    async def _settler(self) -> AsyncIterator[tuple[AIOKafkaProducer, AIOKafkaConsumer]]:
        """The replay/drop producer in an open transaction, committed when the block ends
        (aborted if it raises), and a reader. The producer starts before anything is read:
        starting it fences an earlier one and ends that one's transaction, so what is settled
        can be read after it."""
        producer = self._producer(f"{self.dlq_topic}.replay")
        try:
            await self._within(producer.start())
            async with self._reader_for_one_call() as reader:
                await producer.begin_transaction()
                try:
                    yield producer, reader
                except BaseException:
                    with contextlib.suppress(KafkaError):
                        await self._within(producer.abort_transaction())
                    raise
                await self._within(producer.commit_transaction())
        finally:
            with contextlib.suppress(KafkaError):
                await producer.stop()

    async def _range(self, reader: AIOKafkaConsumer, upto: int | None = None
                     ) -> tuple[int, int]:
        """[first unsettled offset, end): the end is the last stable offset (read_committed),
        cut after ``upto``."""
        committed = await self._within(reader.committed(self._tp))
        first = (await self._within(reader.beginning_offsets([self._tp])))[self._tp]
        end = (await self._within(reader.end_offsets([self._tp])))[self._tp]
        start = max(first, committed or 0)
        return start, end if upto is None else max(start, min(end, upto + 1))

    async def _batches(self, reader: AIOKafkaConsumer, start: int, stop: int
                       ) -> AsyncIterator[list[Any]]:
        """The committed records with offsets in [start, stop), a fetch at a time; gives up
        (TimeoutError) when a fetch brings nothing for ``timeout_s``."""
        reader.seek(self._tp, start)
        progress = time.monotonic()
        while (position := await reader.position(self._tp)) < stop:
            batches = await reader.getmany(self._tp, timeout_ms=500, max_records=10_000)
            if await reader.position(self._tp) > position:
                progress = time.monotonic()
            elif time.monotonic() - progress > self._timeout_s:
                raise TimeoutError(f"no progress reading {self.dlq_topic} at {position}")
            yield [r for r in batches.get(self._tp, []) if r.offset < stop]

    async def _count(self, reader: AIOKafkaConsumer, start: int, stop: int) -> int:
        return sum([len(records) async for records in self._batches(reader, start, stop)])

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
