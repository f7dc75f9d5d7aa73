"""What ``/readyz`` says about a sessionizer worker (the ``clickport sessionizer`` service's
and ``clickport dev``'s): the Store and the dead-letter place, each ``ok`` or how long it has
been retried and why, and the dead letters waiting for an operator.

Ready unless a retry streak has lasted past `RETRY_GRACE_SECONDS`: a streak shorter than that
is a blip. Pending dead letters leave the worker ready (it goes on with the stream) but make
it ``degraded``, with the command to run."""

from __future__ import annotations

from typing import Any

from services.core.dead_letters import FIX_HINT
from services.sessionizer.worker import Sessionizer

RETRY_GRACE_SECONDS = 5.0


def worker_health(worker: Sessionizer) -> tuple[bool, dict[str, Any]]:
    streaks = (worker.store_streak, worker.dead_letter_streak)
    ready = worker.running and all(s.seconds() <= RETRY_GRACE_SECONDS for s in streaks)
    pending = worker.dead_letters_pending
    letters: dict[str, Any] = {"pending": pending, "writes": worker.dead_letter_streak.describe()}
    if pending:
        letters["run"] = FIX_HINT
    if worker.dead_letters_unknown:
        letters["count_failed"] = worker.dead_letters_unknown
    troubled = bool(pending) or any(s.active for s in streaks)
    return ready, {"status": "degraded" if troubled else "ok",
                   "store": worker.store_streak.describe(), "dead_letters": letters}
