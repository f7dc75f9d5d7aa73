"""The Transport seam: ingest publishes keyed bytes; the sessionizer consumes per-partition
batches, commits offsets after its writes, and hears about assignment changes.

Implementations: `services.adapters.kafka_transport.KafkaTransport` (production) and
`services.adapters.disk_queue.DiskQueueTransport` (the embedded default: bounded, on local
disk, so an event answered 2xx survives ``kill -9``). Offsets follow Kafka's convention: a
commit names the *next* offset to read.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


class TransportError(RuntimeError):
    """The transport failed; ingest answers 503 and the event is not acknowledged."""


class TransportFull(TransportError):
    """The bounded queue is full (the consumer is behind or stopped)."""


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


class Transport(Protocol):
    async def start(self) -> None: ...

    async def publish(self, key: bytes, value: bytes) -> None:
        """Hand one message off durably, or raise `TransportError`."""
        ...

    def consumer(
        self, group: str, on_assigned: AssignmentCallback, on_revoked: AssignmentCallback
    ) -> Consumer: ...

    def describe(self) -> str:
        """One line for /readyz, e.g. ``kafka 127.0.0.1:9092`` or ``embedded disk queue``."""
        ...

    async def stop(self) -> None: ...
