"""The Transport contract against the embedded disk queue (the Kafka transport joins this
suite through the `transport_factory` fixture when a broker is available)."""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from services.adapters.disk_queue import DiskQueueTransport
from services.core.transport import Message, TransportFull


async def _noop(partitions: frozenset[int]) -> None:
    return None


async def drain(transport: DiskQueueTransport, group: str, want: int) -> list[Message]:
    consumer = transport.consumer(group, _noop, _noop)
    await consumer.start()
    got: list[Message] = []
    for _ in range(50):
        got += await consumer.poll(1000, 0.05)
        if len(got) >= want:
            break
    await consumer.commit({m.partition: m.offset + 1 for m in got})
    await consumer.stop()
    return got


def test_messages_keep_order_and_survive_reopen(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        queue = DiskQueueTransport(tmp_path / "q.sqlite3", max_pending=100)
        await queue.start()
        for i in range(10):
            await queue.publish(b"k", str(i).encode())
        await queue.stop()
        reopened = DiskQueueTransport(tmp_path / "q.sqlite3", max_pending=100)
        await reopened.start()
        got = await drain(reopened, "g", 10)
        assert [m.value for m in got] == [str(i).encode() for i in range(10)]
        await reopened.stop()

    asyncio.run(scenario())


def test_a_commit_resumes_after_the_committed_offset(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        queue = DiskQueueTransport(tmp_path / "q.sqlite3", max_pending=100)
        await queue.start()
        for i in range(6):
            await queue.publish(b"k", str(i).encode())
        consumer = queue.consumer("g", _noop, _noop)
        await consumer.start()
        first = await consumer.poll(3, 0.1)
        await consumer.commit({0: first[-1].offset + 1})
        await consumer.stop()
        rest = await drain(queue, "g", 3)  # a new consumer starts at the commit
        assert [m.value for m in rest] == [b"3", b"4", b"5"]
        uncommitted = queue.consumer("g2", _noop, _noop)
        await uncommitted.start()
        assert len(await uncommitted.poll(100, 0.1)) == 6  # a new group reads from the start
        await queue.stop()

    asyncio.run(scenario())


def test_the_queue_is_bounded(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        queue = DiskQueueTransport(tmp_path / "q.sqlite3", max_pending=3)
        await queue.start()
        for _ in range(3):
            await queue.publish(b"k", b"v")
        with pytest.raises(TransportFull):
            await queue.publish(b"k", b"v")
        await drain(queue, "g", 3)
        await queue.publish(b"k", b"v")  # room again once consumed and committed
        await queue.stop()

    asyncio.run(scenario())


def test_a_queue_file_keeps_its_stream_id_and_a_new_file_gets_another(tmp_path: pathlib.Path
                                                                         ) -> None:
    async def stream_of(path: pathlib.Path) -> int:
        queue = DiskQueueTransport(path, max_pending=10)
        await queue.start()
        await queue.publish(b"k", b"v")
        [message] = await drain(queue, "g", 1)
        await queue.stop()
        return message.stream

    first = asyncio.run(stream_of(tmp_path / "q.sqlite3"))
    assert asyncio.run(stream_of(tmp_path / "q.sqlite3")) == first
    (tmp_path / "q.sqlite3").unlink()  # recreated: its offsets restart, so its stream differs
    assert asyncio.run(stream_of(tmp_path / "q.sqlite3")) != first
