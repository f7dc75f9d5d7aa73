"""The Transport seam: ingest publishes keyed bytes; the sessionizer consumes per-partition
batches, commits offsets after its writes, and hears about assignment changes. Messages the
sessionizer cannot store go to the transport's dead-letter place (`DeadLetters`), from which
an operator replays or drops them (docs/delivery.md, "Dead letters").

Implementations: `services.adapters.kafka_transport.KafkaTransport` (production) and
`services.adapters.disk_queue.DiskQueueTransport` (the embedded default: bounded, on local
disk, so an event answered 2xx survives ``kill -9``). Offsets follow Kafka's convention: a
commit names the *next* offset to read.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class TransportError(RuntimeError):
    """The transport failed; ingest answers 503 and the event is not acknowledged."""

    reason = ""  # a name ingest's 503 gives when there is one to give


class TransportFull(TransportError):
    """The bounded queue is full (the consumer is behind or stopped)."""


class QueueUnusable(TransportError):
    """The embedded queue file cannot be used (corrupt, or unreadable): nothing is published
    to it or consumed from it until an operator repairs it (``clickport queue repair``)."""

    reason = "queue_unusable"


@dataclass(frozen=True, slots=True)
class Message:
    partition: int
    offset: int
    key: bytes
    value: bytes
    # Which sequence of offsets this one belongs to: a (topic, partition) or one embedded
    # queue file. Offsets are comparable only within a stream (the replay watermark uses it).
    stream: int = 0


@functools.lru_cache(maxsize=4096)  # called per consumed message with a handful of streams
def stream_id(*names: object) -> int:
    """A stable 32-bit id for a stream, e.g. ``stream_id(topic, partition)``."""
    return zlib.crc32("/".join(str(n) for n in names).encode())


AssignmentCallback = Callable[[frozenset[int]], Awaitable[None]]


class Consumer(Protocol):
    async def start(self) -> None: ...

    async def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        """Messages in offset order per partition; empty after ``timeout_s`` without any."""
        ...

    async def commit(self, offsets: Mapping[int, int]) -> None:
        """Record, per partition, the next offset to read (last processed + 1)."""
        ...

    def assignment(self) -> frozenset[int]: ...

    async def lag(self) -> int:
        """Messages published but not yet read by this consumer (for metrics)."""
        ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SetAside:
    """Messages to dead-letter, all for one reason (e.g. ``store_rejected``, ``corrupt``);
    ``detail`` says what went wrong (an error message)."""

    messages: Sequence[Message]
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One pending entry of the dead-letter place: the original message with why and when."""

    id: int  # its place in the dead-letter sequence (`replay`/`drop` take ``upto`` one)
    reason: str
    detail: str
    partition: int  # where the original was on the main stream
    offset: int
    at_ms: int  # when it was dead-lettered (ms since the epoch)
    key: bytes
    value: bytes


class DeadLetters(Protocol):
    """The transport's dead-letter place: durable, and exact. `put` records messages together
    with an offset commit, as one (both or neither), so a batch set aside is never consumed
    again; `replay` moves entries back onto the main stream and removes them as one, and
    `drop` removes them, so each entry is replayed or dropped once. Every failure raises
    `TransportError`, after which the same call can be tried again."""

    async def put(self, aside: Sequence[SetAside], *, group: str,
                  offsets: Mapping[int, int]) -> None:
        """Record ``aside`` and commit ``offsets`` for consumer ``group``, atomically."""
        ...

    async def pending(self) -> int:
        """Entries neither replayed nor dropped."""
        ...

    async def entries(self, limit: int) -> list[DeadLetter]:
        """The first ``limit`` pending entries, oldest first."""
        ...

    async def replay(self, upto: int | None = None) -> int:
        """Publish the pending entries (up to id ``upto``, or all) again on the main stream,
        where they get new offsets, removing them in the same step; returns how many."""
        ...

    async def drop(self, upto: int | None = None) -> int:
        """Discard the pending entries (up to id ``upto``, or all); returns how many."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    async def start(self) -> None: ...

    async def publish(self, key: bytes, value: bytes) -> None:
        """Hand one message off durably, or raise `TransportError`."""
        ...

    def consumer(
        self, group: str, on_assigned: AssignmentCallback, on_revoked: AssignmentCallback
    ) -> Consumer: ...

    def dead_letters(self) -> DeadLetters:
        """A handle on the dead-letter place, owned (and closed) by the caller."""
        ...

    def describe(self) -> str:
        """One line for /readyz, e.g. ``kafka 127.0.0.1:9092`` or ``embedded disk queue``."""
        ...

    async def stop(self) -> None: ...
