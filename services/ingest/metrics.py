"""Ingest's Prometheus metrics (O3): accepted, published, dropped by reason, rejected by
field, and answers of 503."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from services.core.metrics import counter
from services.ingest.endpoint import IngestStats


def ingest_metrics(stats: IngestStats) -> Iterable[Metric]:
    p = "clickport_ingest_"
    return [
        counter(p + "accepted", "Beacons accepted (answered 2xx and published)", stats.accepted),
        counter(p + "published", "Events handed to the transport", stats.published),
        counter(p + "dropped", "Beacons dropped on purpose, by reason", 0,
                dict(stats.dropped), "reason"),
        counter(p + "rejected", "Beacons rejected with 400/413, by field", 0,
                dict(stats.rejected), "field"),
        counter(p + "unavailable", "Beacons answered 503 (transport unavailable)",
                stats.unavailable),
    ]
