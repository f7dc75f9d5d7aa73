"""Per-client-IP rate limiting (I6) and the client IP itself (trusted proxies only).

The limiter counts events per IP in the current minute; its table is cleared when the minute
turns, so memory is bounded by the number of distinct IPs seen in one minute. IPs live only
in this in-memory table, never in a log or a message.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._minute = -1
        self._counts: dict[str, int] = {}

    def allow(self, ip: str, now_ms: int) -> bool:
        if self.per_minute == 0:
            return True
        minute = now_ms // 60_000
        if minute != self._minute:
            self._minute, self._counts = minute, {}
        count = self._counts.get(ip, 0) + 1
        self._counts[ip] = count
        return count <= self.per_minute


def client_ip(peer: str, forwarded_for: str | None, trusted: Iterable[str]) -> str:
    """The client IP: the peer, or the right-most untrusted ``X-Forwarded-For`` hop when the
    peer is a trusted proxy."""
    networks = trusted_networks(tuple(trusted))
    if not forwarded_for or not _in(peer, networks):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _in(hop, networks):
            return hop
    return peer


@functools.lru_cache(maxsize=8)
def trusted_networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """The trusted proxies parsed (once per configuration, not per request); raises
    ValueError for an entry that is not an IP or CIDR."""
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _in(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in networks)
