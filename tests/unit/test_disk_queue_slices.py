"""The embedded queue's consumer prunes a slice at a time (it shares the event loop with
ingest in clickport dev): nothing is deleted before every group has committed past it, and
nothing unconsumed is skipped."""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from services.adapters import disk_queue
from services.adapters.disk_queue import DiskQueueTransport


async def _noop(partitions: frozenset[int]) -> None:
    return None


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk_queue, "_PRUNE_SLICE", 7)


async def filled(path: pathlib.Path, count: int) -> DiskQueueTransport:
    queue = DiskQueueTransport(path, max_pending=10_000)
    await queue.start()
    await asyncio.gather(*(queue.publish(b"k", f"v{i}".encode()) for i in range(count)))
    return queue


def test_the_prune_deletes_in_slices_only_what_every_group_has_committed(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk_queue, "_PRUNE_EVERY_COMMITS", 1)

    async def scenario() -> None:
        queue = await filled(tmp_path / "q.sqlite3", 50)
        ahead, behind = (queue.consumer(g, _noop, _noop) for g in ("ahead", "behind"))
        for consumer in (ahead, behind):
            await consumer.start()
        await behind.commit({0: 21})  # behind has consumed offsets 1-20
        await ahead.commit({0: 46})  # ahead 1-45: the prune may go up to 20 only
        db = queue._require_open()
        assert db.execute("SELECT MIN(offset), COUNT(*) FROM messages").fetchone() == (21, 30)
        await behind.commit({0: 51})  # now both are past 45: 21-45 go, in four slices
        assert db.execute("SELECT MIN(offset), COUNT(*) FROM messages").fetchone() == (46, 5)
        rest = await ahead.poll(1_000, 0.05)
        assert [m.offset for m in rest] == [46, 47, 48, 49, 50]
        await queue.stop()

    asyncio.run(scenario())
