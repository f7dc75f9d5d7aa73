"""What ``/readyz`` says about a sessionizer worker (the ``clickport sessionizer`` service's
and ``clickport dev``'s): its problems, which make it not ready, and the details: the Store
and the dead-letter place, each ``ok`` or how long it has been retried and why, the dead
letters waiting for an operator, and the loop's restarts.

Problems: the loop is down (not started, or crashed and not moving on since); a retry streak
has lasted past `RETRY_GRACE_SECONDS` (a shorter one is a blip); work waits and the loop has
not committed for its ``stuck_seconds``. Pending dead letters leave the worker ready (it goes
on with the stream) but make it ``degraded``, with the command to run."""

from __future__ import annotations

from typing import Any

from services.core.dead_letters import FIX_HINT
from services.core.readiness import Problem
from services.sessionizer.supervisor import Supervisor

RETRY_GRACE_SECONDS = 5.0
SESSIONIZER_DOWN = "sessionizer_down"
SESSIONIZER_STUCK = "sessionizer_stuck"
STORE_UNWRITABLE = "store_unwritable"
DEAD_LETTERS_UNWRITABLE = "dead_letters_unwritable"
WORKER_PROBLEMS = (SESSIONIZER_DOWN, SESSIONIZER_STUCK, STORE_UNWRITABLE,
                   DEAD_LETTERS_UNWRITABLE)


def worker_problems(supervisor: Supervisor, pending: int) -> list[Problem]:
    """``pending``: messages the worker has not read yet (queue backlog, or Kafka lag)."""
    worker = supervisor.worker
    found = []
    if supervisor.recovering():
        found.append(Problem(SESSIONIZER_DOWN, f"the loop crashed ({supervisor.restarts} "
                                               f"restarts): {supervisor.last_error}"))
    elif not worker.running:
        found.append(Problem(SESSIONIZER_DOWN, "the loop is not running"))
    for name, streak in ((STORE_UNWRITABLE, worker.store_streak),
                         (DEAD_LETTERS_UNWRITABLE, worker.dead_letter_streak)):
        if streak.seconds() > RETRY_GRACE_SECONDS:
            found.append(Problem(name, streak.describe()))
    still = worker.now() - worker.progress_at
    if worker.running and (pending > 0 or worker.busy()) and still > worker.stuck_seconds:
        found.append(Problem(SESSIONIZER_STUCK, f"{pending} events unread and no batch "
                                                f"committed for {still:.0f} s"))
    return found


def worker_details(supervisor: Supervisor) -> dict[str, Any]:
    worker = supervisor.worker
    streaks = (worker.store_streak, worker.dead_letter_streak)
    pending = worker.dead_letters_pending
    letters: dict[str, Any] = {"pending": pending, "writes": worker.dead_letter_streak.describe()}
    if pending:
        letters["run"] = FIX_HINT
    if worker.dead_letters_unknown:
        letters["count_failed"] = worker.dead_letters_unknown
    troubled = bool(pending) or any(s.active for s in streaks) or supervisor.recovering()
    return {"status": "degraded" if troubled else "ok",
            "store": worker.store_streak.describe(), "dead_letters": letters,
            "sessionizer_restarts": supervisor.describe()}
