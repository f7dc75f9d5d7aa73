"""The sessionizer's Prometheus metrics (O3): consumed, written, batch size, insert latency,
batch delay (freshness), retries, sessions in memory and consumer lag."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from services.core.metrics import counter, gauge, histogram
from services.sessionizer.worker import Sessionizer


def sessionizer_metrics(worker: Sessionizer, lag: int) -> Iterable[Metric]:
    s = worker.stats
    p = "clickport_sessionizer_"
    return [
        counter(p + "consumed", "Events consumed from the transport", s.consumed),
        counter(p + "replayed_skipped", "Replayed events already applied", s.replayed_skipped),
        counter(p + "corrupt", "Undecodable messages skipped", s.corrupt),
        counter(p + "events_written", "Event rows written", s.events_written),
        counter(p + "sessions_written", "Session rows written", s.sessions_written),
        counter(p + "inserts", "Insert statements run", s.inserts),
        counter(p + "insert_seconds", "Time spent in batch inserts", s.insert_seconds_total),
        counter(p + "store_retries", "Store writes retried", s.store_retries),
        gauge(p + "last_batch_size", "Events in the last written batch", s.last_batch_size),
        gauge(p + "last_insert_seconds", "Duration of the last batch write",
              s.last_insert_seconds),
        gauge(p + "last_batch_delay_seconds",
              "Receive-to-stored time of the oldest event of the last written batch",
              s.last_batch_delay_seconds),
        histogram(p + "batch_delay_seconds",
                  "Receive-to-stored time of the oldest event of each written batch",
                  worker.batch_delays),
        gauge(p + "sessions_in_memory", "Sessions held in memory", len(worker.sessions.states)),
        gauge(p + "consumer_lag", "Messages published but not yet consumed", lag),
    ]
