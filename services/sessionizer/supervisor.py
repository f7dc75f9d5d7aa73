"""Keeps the sessionizer loop running. An exception nobody foresaw (an SQLite error from the
queue's commit on a full disk, a Kafka consumer that cannot start) used to end the task
silently while ingest went on answering 2xx until the queue was full. Now it is logged with
its traceback, counted (``clickport_sessionizer_restarts_total``, ``/readyz``), and the loop
is run again after a backoff.

`Sessionizer.run` starts from the last committed offsets with no session in memory and an
empty batch, and a crashed run discards its open batch, so what it had applied but not
written is replayed and applied once (docs/delivery.md, "Crash windows"): a replay the Store
already holds is skipped by its session's watermark, the rest is applied to the reloaded state.
"""

from __future__ import annotations

import logging
from typing import Any

from services.core.store import error_summary
from services.sessionizer.worker import Sessionizer

log = logging.getLogger("clickport.sessionizer")

FIRST_BACKOFF, MAX_BACKOFF = 0.5, 10.0


class Supervisor:
    """Runs ``worker``'s loop until it is stopped, and again after every crash."""

    def __init__(self, worker: Sessionizer) -> None:
        self.worker = worker
        self.restarts = 0
        self.last_error = ""
        self.last_crash_at: float | None = None  # on the worker's clock
        self.started = False

    async def run(self) -> None:
        self.started = True
        backoff = FIRST_BACKOFF
        while True:
            try:
                await self.worker.run()
            except Exception as exc:  # whatever it was, the loop must come back
                if self.worker.stopping:
                    log.exception("the sessionizer loop crashed while stopping")
                    return
                if self.last_crash_at is not None and self.worker.progress_at > self.last_crash_at:
                    backoff = FIRST_BACKOFF  # it got going in between: not the same fault
                self.restarts += 1
                self.last_error = error_summary(f"{type(exc).__name__}: {exc}")[:500]
                self.last_crash_at = self.worker.now()
                log.exception("the sessionizer loop crashed; restart %d in %.1f s, from the last "
                              "committed offsets", self.restarts, backoff)
            else:
                if self.worker.stopping:
                    return
                log.error("the sessionizer loop ended without being stopped; restarting it")
            if await self.worker.wait_stopping(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF)

    def recovering(self) -> bool:
        """The loop crashed and has not moved on since (restarting, or crashing again)."""
        return self.last_crash_at is not None and self.worker.progress_at <= self.last_crash_at

    def describe(self) -> dict[str, Any]:
        crashed = self.last_crash_at
        since = None if crashed is None else round(self.worker.now() - crashed, 1)
        return {"count": self.restarts, "last_error": self.last_error,
                "seconds_since_last": since}
