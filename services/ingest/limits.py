"""Per-client rate limiting (I6) and the client IP itself (trusted proxies only).

The limiter counts events per client in the current minute. A client is an IPv4 address,
or an IPv6 /64: one subscriber gets a whole /64 and can rotate through its 2^64 addresses,
so counting /128s would let one client escape the limit. An IPv4-mapped IPv6 address
(``::ffff:192.0.2.1``, a dual-stack socket's view of an IPv4 peer) is that IPv4 address.

The table is cleared when the minute turns and holds at most ``max_clients`` clients. When
it is full, clients it does not know yet are counted together under one shared overflow
budget of ``per_minute`` events until the minute turns, while the clients it holds keep
their own budgets: a flood from more addresses than the table holds is cut as one client
rather than let through, at the price that new visitors during such a flood share that
budget. docs/ingest.md has the memory an entry takes. IPs live only in this in-memory
table and in two bounded caches of parsed addresses (the most recent 4,096 each), never in a
log or a message.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from services.core.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Bucket = str | int  # an IPv4 address as text, or the upper 64 bits of an IPv6 address

DEFAULT_MAX_CLIENTS = Settings.rate_limit_max_clients


class RateLimiter:
    def __init__(self, per_minute: int, max_clients: int = DEFAULT_MAX_CLIENTS) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self.overflowed = 0  # events counted in the shared overflow budget, since start
        self._minute = -1
        self._counts: dict[Bucket, int] = {}
        self._overflow = 0  # this minute's events in the shared overflow budget

    def __len__(self) -> int:
        return len(self._counts)

    def allow(self, ip: str, now_ms: int) -> bool:
        if self.per_minute == 0:
            return True
        minute = now_ms // 60_000
        if minute != self._minute:
            self._minute, self._counts, self._overflow = minute, {}, 0
        bucket = ip if ":" not in ip else ipv6_bucket(ip)
        count = self._counts.get(bucket)
        if count is None and len(self._counts) >= self.max_clients:
            self.overflowed += 1
            self._overflow += 1
            return self._overflow <= self.per_minute
        count = (count or 0) + 1
        self._counts[bucket] = count
        return count <= self.per_minute


@functools.lru_cache(maxsize=4096)
def ipv6_bucket(ip: str) -> Bucket:
    """The /64 of an IPv6 address (its upper 64 bits); the IPv4 address of an IPv4-mapped
    one; the text itself when it is not an address (a peer that is no IP: a unix socket)."""
    try:
        address = ipaddress.IPv6Address(ip)
    except ValueError:
        return ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return int(address) >> 64


def client_ip(peer: str, forwarded_for: str | None, trusted: Iterable[str]) -> str:
    """The client IP: the peer, or the right-most untrusted ``X-Forwarded-For`` hop when the
    peer is a trusted proxy (the peer too when that hop is not an IP address)."""
    return forwarded_client(peer, forwarded_for, trusted)[0]


def forwarded_client(peer: str, forwarded_for: str | None, trusted: Iterable[str]
                     ) -> tuple[str, bool]:
    """`client_ip`, and whether the hop it should have come from was not an IP address
    (counted by ingest: a proxy that forwards garbage, or a chain that is not a list of
    addresses, would otherwise hand out a fresh rate-limit budget per invented string)."""
    networks = trusted_networks(tuple(trusted))
    if not forwarded_for or not _in(peer, networks):
        return peer, False
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        address = _address(hop)
        if address is None:
            return peer, True
        if not any(address in net for net in networks):
            return hop, False
    return peer, False


@functools.lru_cache(maxsize=8)
def trusted_networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """The trusted proxies parsed (once per configuration, not per request); raises
    ValueError for an entry that is not an IP or CIDR."""
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


@functools.lru_cache(maxsize=4096)  # the proxy's address and its clients' hops recur
def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


def _in(ip: str, networks: tuple[Network, ...]) -> bool:
    address = _address(ip)
    return address is not None and any(address in net for net in networks)
