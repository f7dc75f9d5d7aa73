"""The rate limiter's table: what one entry costs in memory, and its buckets (an IPv6 /64,
an IPv4 address, an IPv4-mapped IPv6 address as IPv4)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

from services.ingest.limits import RateLimiter, ipv6_bucket

ENTRIES = 20_000


def bytes_per_entry(address: Callable[[int], str]) -> float:
    """Memory the table holds per client, its key included: each address string is made
    while memory is traced, as a request's peer string is (the table keeps an IPv4 one)."""
    ipv6_bucket.cache_clear()
    limiter = RateLimiter(60, max_clients=ENTRIES)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(ENTRIES):
            limiter.allow(address(i), 0)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(limiter) == ENTRIES
    return grown / ENTRIES


def test_an_entry_costs_about_a_hundred_bytes_with_its_key() -> None:
    v4 = bytes_per_entry(lambda i: f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    v6 = bytes_per_entry(lambda i: f"2001:db8:{i >> 16:x}:{i & 0xffff:x}::1")
    print(f"\nbytes per entry: IPv4 {v4:.0f}, IPv6 /64 {v6:.0f}")
    assert v4 < 160 and v6 < 160


def test_buckets() -> None:
    assert ipv6_bucket("2001:db8:1:2:aaaa::1") == ipv6_bucket("2001:DB8:1:2:ffff::") \
        == 0x20010db800010002
    assert ipv6_bucket("2001:db8:1:3::1") != ipv6_bucket("2001:db8:1:2::1")
    assert ipv6_bucket("::ffff:192.0.2.1") == "192.0.2.1"
    assert ipv6_bucket("not:an:ip") == "not:an:ip"
