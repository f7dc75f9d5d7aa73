"""The sessionizer's Prometheus metrics (O3): consumed, written, batch size, insert latency,
batch delay (freshness), retries and how long the current streak of them has lasted, dead
letters (set aside by reason, and pending), sessions in memory, consumer lag and restarts
of the loop after a crash."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from services.core.dead_letters import REASONS
from services.core.metrics import counter, gauge, histogram
from services.sessionizer.supervisor import Supervisor


def sessionizer_metrics(supervisor: Supervisor, lag: int) -> Iterable[Metric]:
    worker = supervisor.worker
    s = worker.stats
    p = "clickport_sessionizer_"
    dead_lettered = {reason: float(s.dead_lettered.get(reason, 0)) for reason in REASONS}
    return [
        counter(p + "consumed", "Events consumed from the transport", s.consumed),
        counter(p + "replayed_skipped", "Replayed events already applied", s.replayed_skipped),
        counter(p + "corrupt", "Undecodable messages skipped", s.corrupt),
        counter(p + "events_written", "Event rows written", s.events_written),
        counter(p + "sessions_written", "Session rows written", s.sessions_written),
        counter(p + "inserts", "Insert statements run", s.inserts),
        counter(p + "insert_seconds", "Time spent in batch inserts", s.insert_seconds_total),
        counter(p + "store_retries", "Store writes retried", s.store_retries),
        gauge(p + "store_failing_seconds",
              "How long the Store has been failing and retried (0: it answers)",
              worker.store_streak.seconds()),
        counter(p + "dead_lettered", "Messages set aside in the dead-letter place", 0,
                dead_lettered, "reason"),
        gauge(p + "dead_letters_pending",
              "Dead letters neither replayed nor dropped, as last counted",
              worker.dead_letters_pending or 0),
        counter(p + "dead_letter_retries", "Dead-letter writes retried", s.dead_letter_retries),
        gauge(p + "dead_letter_failing_seconds",
              "How long writing dead letters has been failing and retried (0: it works)",
              worker.dead_letter_streak.seconds()),
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
        counter(p + "sessions_evicted", "Sessions dropped from memory (reloaded when next "
                "seen): idle, or past CLICKPORT_SESSIONS_MAX_IN_MEMORY", 0,
                {k: float(v) for k, v in s.sessions_evicted.items()}, "reason"),
        counter(p + "sessions_reloaded", "Sessions not in memory reloaded from the Store",
                s.sessions_reloaded),
        gauge(p + "consumer_lag", "Messages published but not yet consumed", lag),
        counter(p + "restarts", "Times the loop crashed and was started again",
                supervisor.restarts),
    ]
