"""The embedded queue's group commit writes a group in multi-row INSERTs of at most
`_ROWS_PER_INSERT` messages (issue #8): every message kept, in order, with its offset."""

from __future__ import annotations

import asyncio
import pathlib

from services.adapters import disk_queue
from services.adapters.disk_queue import DiskQueueTransport


async def _noop(partitions: frozenset[int]) -> None:
    return None


async def publish_all(queue: DiskQueueTransport, values: list[bytes], together: int) -> None:
    for start in range(0, len(values), together):
        await asyncio.gather(*(queue.publish(b"key", v) for v in values[start:start + together]))


def test_groups_larger_than_one_insert_keep_every_message_in_order(tmp_path: pathlib.Path
                                                                   ) -> None:
    values = [f"v{i}".encode() for i in range(3 * disk_queue._ROWS_PER_INSERT + 5)]

    async def scenario() -> None:
        queue = DiskQueueTransport(tmp_path / "q.sqlite3", max_pending=10_000)
        await queue.start()
        await publish_all(queue, values, together=len(values))  # one group, four INSERTs
        await publish_all(queue, values, together=7)
        consumer = queue.consumer("g", _noop, _noop)
        await consumer.start()
        got = await consumer.poll(10_000, 0.1)
        assert [m.value for m in got] == values + values
        assert [m.offset for m in got] == list(range(1, 2 * len(values) + 1))
        assert queue.pending() == 2 * len(values)
        await queue.stop()

    asyncio.run(scenario())
