"""``/readyz`` and ``/metrics`` of ``clickport dev``. Ready means accepted events can reach
the Store: the queue takes writes and is below its high-water mark, the sessionizer runs and
moves on, the Store takes its writes (services/sessionizer/health.py) and has no broken part
(services/core/store_damage.py), and today's visitor salt is loaded. Anything else is a named
problem (services/core/readiness.py)."""

from __future__ import annotations

import time
from typing import Any

from services.adapters.disk_queue import DiskQueueTransport
from services.core.metrics import counter, render
from services.core.readiness import Problem, problems_body, readiness_metrics
from services.core.store_damage import STORE_DAMAGED
from services.embedded.parts import Embedded
from services.ingest.metrics import ingest_metrics
from services.sessionizer.health import WORKER_PROBLEMS, worker_details, worker_problems
from services.sessionizer.metrics import sessionizer_metrics

QUEUE_UNUSABLE = "queue_unusable"
QUEUE_UNWRITABLE = "queue_unwritable"
QUEUE_HIGH_WATER = "queue_high_water"
VISITOR_SALT_MISSING = "visitor_salt_missing"
PROBLEMS = (QUEUE_UNUSABLE, QUEUE_UNWRITABLE, QUEUE_HIGH_WATER, *WORKER_PROBLEMS, STORE_DAMAGED,
            VISITOR_SALT_MISSING)
# Not ready from this share of CLICKPORT_QUEUE_MAX_PENDING on: the sessionizer is behind and
# ingest will soon answer 503 to everything.
HIGH_WATER = 0.9
# A failed publish keeps the queue "unwritable" until one succeeds, for this long: without
# publishes nothing would ever clear it, and a balancer that takes the process out of rotation
# for it would keep it out for good.
WRITE_FAILURE_SECONDS = 30.0


QUEUE_REPAIR = ("stop clickport dev, run `clickport queue check`, then `clickport queue "
                "repair` (docs/operations.md, \"A corrupt embedded queue\")")


def queue_problems(queue: DiskQueueTransport) -> list[Problem]:
    if queue.unusable:
        return [Problem(QUEUE_UNUSABLE, {"error": queue.unusable, "recover": QUEUE_REPAIR})]
    found = []
    if queue.write_error and time.monotonic() - queue.write_failed_at < WRITE_FAILURE_SECONDS:
        found.append(Problem(QUEUE_UNWRITABLE, f"the last publish failed: {queue.write_error}"))
    pending = queue.pending()
    if pending >= HIGH_WATER * queue.max_pending:
        found.append(Problem(QUEUE_HIGH_WATER, {
            "pending": pending, "max_pending": queue.max_pending,
            "why": "the sessionizer is behind; at max_pending ingest answers 503"}))
    return found


def problems(parts: Embedded) -> list[Problem]:
    found = queue_problems(parts.transport)
    found += worker_problems(parts.supervisor, parts.transport.pending())
    if damaged := parts.damage.problem():
        found.append(damaged)
    if parts.salts is None or not parts.salts.ready:
        found.append(Problem(VISITOR_SALT_MISSING, "today's visitor salt is not loaded"))
    return found


async def readiness(parts: Embedded) -> tuple[bool, dict[str, Any]]:
    found = problems(parts)
    return not found, {
        "mode": "embedded (chosen: one process, disk queue + chDB)",
        **problems_body(found),
        **worker_details(parts.supervisor),
        "transport": parts.transport.describe(),
        "store_engine": parts.store.describe(),
        "queue_pending": parts.transport.pending(),
        "queue_streams_started": parts.queue_streams_started,
        "visitor_salt_days": parts.salts.days() if parts.salts else [],
        "ingest": {"accepted": parts.ingest_stats.accepted,
                   "dropped": dict(parts.ingest_stats.dropped),
                   "rejected": dict(parts.ingest_stats.rejected)},
        "sessionizer": parts.sessionizer.stats.__dict__,
    }


async def metrics(parts: Embedded) -> bytes:
    lag = await parts.sessionizer.lag()
    return render(lambda: ingest_metrics(parts.ingest_stats),
                  lambda: sessionizer_metrics(parts.supervisor, lag),
                  lambda: [counter("clickport_queue_streams_started",
                                   "Starts that found the queue behind the Store (lost writes)",
                                   parts.queue_streams_started)],
                  parts.damage.metrics,
                  lambda: readiness_metrics(problems(parts), PROBLEMS))
