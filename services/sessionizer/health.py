"""What ``/readyz`` says about a sessionizer worker (the ``clickport sessionizer`` service's
and ``clickport dev``'s): the Store and the dead-letter place, each ``ok`` or how long it has
been retried and why, the dead letters waiting for an operator, and the loop's restarts.

Ready unless the loop is down (not started yet, or crashed and not moving on since) or a
retry streak has lasted past `RETRY_GRACE_SECONDS`: a streak shorter than that is a blip.
Pending dead letters leave the worker ready (it goes on with the stream) but make it
``degraded``, with the command to run."""

from __future__ import annotations

from typing import Any

from services.core.dead_letters import FIX_HINT
from services.sessionizer.supervisor import Supervisor

RETRY_GRACE_SECONDS = 5.0


def worker_health(supervisor: Supervisor) -> tuple[bool, dict[str, Any]]:
    worker = supervisor.worker
    streaks = (worker.store_streak, worker.dead_letter_streak)
    alive = worker.running and not supervisor.recovering()
    ready = alive and all(s.seconds() <= RETRY_GRACE_SECONDS for s in streaks)
    pending = worker.dead_letters_pending
    letters: dict[str, Any] = {"pending": pending, "writes": worker.dead_letter_streak.describe()}
    if pending:
        letters["run"] = FIX_HINT
    if worker.dead_letters_unknown:
        letters["count_failed"] = worker.dead_letters_unknown
    troubled = bool(pending) or any(s.active for s in streaks) or supervisor.recovering()
    return ready, {"status": "degraded" if troubled else "ok",
                   "store": worker.store_streak.describe(), "dead_letters": letters,
                   "sessionizer_restarts": supervisor.describe()}
