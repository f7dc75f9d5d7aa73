"""Ingest's Prometheus metrics (O3): accepted, published, dropped by reason, rejected by
field, answers of 503, and the rate limiter's table: its clients this minute, the events
counted in its shared overflow budget, and forwarded hops that were not an IP."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from services.core.metrics import counter, gauge
from services.ingest.endpoint import IngestStats


def ingest_metrics(stats: IngestStats) -> Iterable[Metric]:
    p = "clickport_ingest_"
    limiter = stats.rate_limiter
    clients, overflowed = (len(limiter), limiter.overflowed) if limiter is not None else (0, 0)
    return [
        counter(p + "accepted", "Beacons accepted (answered 2xx and published)", stats.accepted),
        counter(p + "published", "Events handed to the transport", stats.published),
        counter(p + "dropped", "Beacons dropped on purpose, by reason", 0,
                dict(stats.dropped), "reason"),
        counter(p + "rejected", "Beacons rejected with 400/413, by field", 0,
                dict(stats.rejected), "field"),
        counter(p + "unavailable", "Beacons answered 503 (transport unavailable)",
                stats.unavailable),
        counter(p + "forwarded_for_invalid", "Requests from a trusted proxy whose client hop "
                "was not an IP address (limited as the proxy)", stats.forwarded_for_invalid),
        gauge(p + "rate_limit_clients", "Clients in the rate limiter's table this minute",
              clients),
        counter(p + "rate_limit_overflow", "Events of clients past the rate limiter's table "
                "size, counted in its shared budget", overflowed),
    ]
