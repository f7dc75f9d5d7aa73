"""The fault tests' yardstick (docs/delivery.md, S6): what a run without faults stores, from
what is on the topic. Read every message back with a group-less consumer, fold
`apply_event` over each session's events in offset order, and compare with
``sessions FINAL``; count ``events FINAL`` to see each event stored once."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from topics import read_topic

from services.core.event import decode_event
from services.core.rows import SESSION_COLUMNS_FOR_RELOAD, session_from_row
from services.core.session import SessionState, apply_event
from services.core.store import Store
from services.core.transport import stream_id


def topic_messages(bootstrap: str, topic: str) -> list[tuple[int, int, bytes]]:
    """Every message on the topic as (partition, offset, value), read from the start."""
    async def read() -> list[tuple[int, int, bytes]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            [described] = await admin.describe_topics([topic])
        finally:
            await admin.close()
        records = await read_topic(bootstrap, topic, len(described["partitions"]))
        return [(partition, offset, value) for partition, offset, _, value in records]

    return asyncio.run(read())


def fault_free_sessions(topic: str, messages: list[tuple[int, int, bytes]]
                        ) -> dict[str, SessionState]:
    states: dict[str, SessionState] = {}
    for partition, offset, value in sorted(messages):
        event = decode_event(value)
        states[event.sid], _ = apply_event(states.get(event.sid), event, offset,
                                           stream=stream_id(topic, partition))
    return states


def stored(store: Store, site: str, sids: set[str]) -> tuple[dict[str, SessionState], int, int]:
    """The site's stored sessions among `sids`, and its events: rows and distinct ids."""
    rows = store.query(f"SELECT {SESSION_COLUMNS_FOR_RELOAD} FROM sessions FINAL "
                       "WHERE site_id = {s:String}", {"s": site})
    states = {r["session_id"]: session_from_row(r) for r in rows if r["session_id"] in sids}
    counts = store.query("SELECT count() AS n, uniqExact(event_id) AS ids FROM events FINAL "
                         "WHERE site_id = {s:String}", {"s": site})[0]
    return states, int(counts["n"]), int(counts["ids"])
