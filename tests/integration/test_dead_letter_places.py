"""The dead-letter place of each transport (services/core/transport.py `DeadLetters`): the
embedded disk queue's ``dead_letters`` table and Kafka's ``<topic>.dlq`` topic.

- `put` records the messages with their reason and commits the group's offsets as one: the
  group resumes after them;
- `entries` lists them oldest first with where they came from; `pending` counts them;
- `replay` puts them back on the main stream at new offsets and removes them, once;
- `drop` removes them; both take an ``upto`` id;
- Kafka: a replay that is interrupted before its commit is never seen by a read_committed
  consumer, and the next replay fences it; a large replay goes in several transactions, and
  a message set aside twice (a put retried after its commit went unheard) is replayed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from topics import read_topic

from services.adapters import kafka_dead_letters
from services.adapters.disk_queue import DiskQueueTransport
from services.adapters.kafka_transport import (
    KafkaTransport,
    create_dead_letter_topic,
    create_topic,
)
from services.core.transport import DeadLetters, Message, SetAside

PARTITIONS = 2


async def _noop(partitions: frozenset[int]) -> None:
    return None


async def poll_until(consumer: Any, want: int, seconds: float = 60.0) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        got += await consumer.poll(1000, 0.2)
    return got


async def settle(letters: DeadLetters, want: int, seconds: float = 30.0) -> int:
    """`pending` once it reaches ``want`` (Kafka's markers may take a moment), else its last."""
    deadline = time.monotonic() + seconds
    while (count := await letters.pending()) != want and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return count


async def exercise(transport: Any, group: str) -> None:
    """The contract, on a started transport whose main stream is empty."""
    for i in range(6):
        await transport.publish(f"k{i % 3}".encode(), f"v{i}".encode())
    consumer = transport.consumer(group, _noop, _noop)
    await consumer.start()
    first = await poll_until(consumer, 6)
    assert sorted(m.value for m in first) == [f"v{i}".encode() for i in range(6)]
    bad = [m for m in first if m.value in (b"v1", b"v2")]
    junk = [m for m in first if m.value == b"v4"]
    ends = {m.partition: m.offset + 1 for m in first}
    letters = transport.dead_letters()
    assert await letters.pending() == 0
    await letters.put([SetAside(bad, "store_rejected", "Code: 469. constraint"),
                       SetAside(junk, "corrupt", "MessagePack data is malformed")],
                      group=group, offsets=ends)
    await consumer.stop()

    assert await settle(letters, 3) == 3
    listed = await letters.entries(10)
    assert [(e.reason, e.value, e.key) for e in listed] == [
        *(("store_rejected", m.value, m.key) for m in bad), ("corrupt", b"v4", b"k1")]
    assert [(e.partition, e.offset) for e in listed] == [
        (m.partition, m.offset) for m in (*bad, *junk)]
    assert listed[0].detail == "Code: 469. constraint" and listed[0].at_ms > 1.7e12
    assert [e.id for e in await letters.entries(2)] == [e.id for e in listed[:2]]

    resumed = transport.consumer(group, _noop, _noop)  # the put committed the offsets
    await resumed.start()
    assert await resumed.poll(100, 0.5) == []
    assert await letters.replay(upto=listed[1].id) == 2  # the two rejected ones
    again = await poll_until(resumed, 2)
    assert sorted(m.value for m in again) == [b"v1", b"v2"]
    assert all(m.offset > ends[m.partition] - 1 for m in again)  # new offsets, after all
    assert {m.key: m.partition for m in again} == {m.key: m.partition for m in bad}
    assert await letters.replay(upto=listed[1].id) == 0  # once
    assert await settle(letters, 1) == 1
    assert await letters.drop() == 1
    assert await settle(letters, 0) == 0 and await letters.entries(10) == []
    assert await letters.replay() == 0 and await letters.drop() == 0
    assert await resumed.poll(100, 0.5) == []  # nothing more came back
    await resumed.stop()
    await letters.close()


def test_disk_queue_dead_letters(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        queue = DiskQueueTransport(tmp_path / "q.sqlite3", max_pending=100)
        await queue.start()
        await exercise(queue, "g")
        await queue.stop()

    asyncio.run(scenario())


def test_disk_queue_dead_letters_survive_reopen_and_wake_a_waiting_consumer(
        tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        queue = DiskQueueTransport(tmp_path / "q.sqlite3", max_pending=100)
        await queue.start()
        await queue.publish(b"k", b"v")
        consumer = queue.consumer("g", _noop, _noop)
        await consumer.start()
        [message] = await consumer.poll(10, 0.1)
        await queue.dead_letters().put([SetAside([message], "corrupt", "x")], group="g",
                                       offsets={0: message.offset + 1})
        await queue.stop()
        reopened = DiskQueueTransport(tmp_path / "q.sqlite3", max_pending=100)
        await reopened.start()
        letters = reopened.dead_letters()
        assert [e.value for e in await letters.entries(10)] == [b"v"]
        waiting = reopened.consumer("g", _noop, _noop)
        await waiting.start()
        poll = asyncio.create_task(waiting.poll(10, 30.0))  # waits for a message
        await asyncio.sleep(0.1)
        assert await letters.replay() == 1
        [back] = await asyncio.wait_for(poll, 10)  # woken, well before its 30 s timeout
        assert (back.value, back.offset > message.offset) == (b"v", True)
        assert reopened.pending() == 1  # the replayed message waits to be committed
        await reopened.stop()

    asyncio.run(scenario())


async def new_topics(bootstrap: str) -> str:
    """A fresh events topic and its dead-letter topic; returns the events topic's name."""
    topic = f"clickport.test.{uuid.uuid4().hex[:8]}"
    assert await create_topic(bootstrap, topic, PARTITIONS)
    assert await create_dead_letter_topic(bootstrap, topic)
    assert not await create_dead_letter_topic(bootstrap, topic)  # idempotent
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # a topic is listed a moment after it is created
        deadline = time.monotonic() + 30
        while not {topic, f"{topic}.dlq"} <= set(await admin.list_topics()):
            assert time.monotonic() < deadline, "the new topics are not listed"
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    return topic


@pytest.mark.kafka
def test_kafka_dead_letters(kafka: Any) -> None:
    async def scenario() -> None:
        transport = KafkaTransport(kafka.bootstrap, await new_topics(kafka.bootstrap))
        await transport.start()
        try:
            await exercise(transport, f"g-{uuid.uuid4().hex[:8]}")
        finally:
            await transport.stop()

    asyncio.run(scenario())


@pytest.mark.kafka
def test_kafka_replay_interrupted_before_its_commit_is_never_seen(kafka: Any) -> None:
    async def scenario() -> None:
        topic = await new_topics(kafka.bootstrap)
        transport = KafkaTransport(kafka.bootstrap, topic)
        letters = transport.dead_letters()
        await letters.put([SetAside([Message(0, 7, b"k", b"set aside")], "corrupt", "x")],
                          group="nobody", offsets={})
        # A replay that published and then died before committing: its transaction is open.
        stuck = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap,
                                 transactional_id=f"{topic}.dlq.replay")
        await stuck.start()
        await stuck.begin_transaction()
        await stuck.send_and_wait(topic, b"never committed", key=b"k")
        assert await letters.replay() == 1  # fences the stuck one, whose transaction aborts
        with contextlib.suppress(KafkaError):
            await stuck.stop()
        await letters.close()
        seen = await read_topic(kafka.bootstrap, topic, PARTITIONS, "read_committed")
        assert [value for _, _, _, value in seen] == [b"set aside"]

    asyncio.run(scenario())


@pytest.mark.kafka
def test_kafka_replays_in_chunks_and_a_message_set_aside_twice_once(
        kafka: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_dead_letters, "REPLAY_CHUNK", 2)  # a transaction per 2 entries

    async def scenario() -> None:
        topic = await new_topics(kafka.bootstrap)
        letters = KafkaTransport(kafka.bootstrap, topic).dead_letters()
        messages = [Message(i % PARTITIONS, 10 + i, b"k%d" % i, b"v%d" % i) for i in range(5)]
        for part in ([messages[:3]], [messages[3:]], [messages[1:2]]):  # the last: a retried put
            await letters.put([SetAside(m, "store_rejected", "x") for m in part],
                              group="nobody", offsets={})
        assert await settle(letters, 6) == 6
        assert await letters.replay() == 5
        assert await settle(letters, 0) == 0
        await letters.close()
        seen = await read_topic(kafka.bootstrap, topic, PARTITIONS, "read_committed")
        assert sorted(value for _, _, _, value in seen) == [m.value for m in messages]

    asyncio.run(scenario())
