"""The producer's partitioner must place every key where aiokafka's default (Kafka's murmur2)
does: a session's events stay on one partition across ingest versions (issue #8)."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from services.adapters.kafka_transport import SessionPartitioner

SHARED = SessionPartitioner(remembered=64)  # small, so evictions happen during the test


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=64))
def test_every_key_goes_where_the_default_partitioner_sends_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert SHARED(key, partitions, partitions) == expected
    assert SHARED(key, partitions, partitions) == expected  # again, from the cache


@pytest.mark.parametrize("sid", ["abcdefghijklmnopqrstuv", "A" * 64, "0123456789_-abcdef"])
def test_a_session_keeps_one_partition(sid: str) -> None:
    partitioner, partitions = SessionPartitioner(), list(range(12))
    assert len({partitioner(sid.encode(), partitions, partitions) for _ in range(5)}) == 1
