"""Per-client-IP rate limiting (I6) and the daily visitor salt (I3).

The limiter counts events per IP in the current minute; its table is cleared when the minute
turns, so memory is bounded by the number of distinct IPs seen in one minute. IPs live only
in this in-memory table, never in a log or a message.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

MS_PER_DAY = 86_400_000


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


class DailySalt:
    """The day's salt, derived from a secret shared by every ingest replica, so replicas
    compute the same visitor id on the same day and a different one the next day."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._day = -1
        self._salt = b""

    def __call__(self, now_ms: int) -> bytes:
        day = now_ms // MS_PER_DAY
        if day != self._day:
            self._day = day
            self._salt = hmac.new(self._secret, str(day).encode(), hashlib.sha256).digest()
        return self._salt


def client_ip(peer: str, forwarded_for: str | None, trusted: Iterable[str]) -> str:
    """The client IP: the peer, or the right-most untrusted ``X-Forwarded-For`` hop when the
    peer is a trusted proxy."""
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]
    if not forwarded_for or not _in(peer, networks):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _in(hop, networks):
            return hop
    return peer


def _in(ip: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in networks)
