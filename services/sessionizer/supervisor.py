"""Keeps the sessionizer running: a crash of its loop (an error nobody foresaw, say an SQLite
error from the queue's commit on a full disk) is logged with its traceback, counted, and the
loop started again after a backoff, instead of ending the task silently while ingest goes on
answering 2xx until the queue is full.

A restarted loop begins from the last committed offsets with no session in memory, so what
the crashed loop had applied but not written is replayed and applied once (docs/delivery.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("clickport.sessionizer")

FIRST_BACKOFF, MAX_BACKOFF = 0.5, 30.0
# A loop that ran this long before crashing counts as healthy: the backoff starts over.
HEALTHY_SECONDS = 60.0


@dataclass
class Supervision:
    restarts: int = 0
    last_error: str = ""
    last_crash_at: float = 0.0  # time.time() of the last crash, 0 if none


async def supervise(run: Callable[[], Awaitable[None]], state: Supervision,
                    stopping: Callable[[], bool]) -> None:
    """Run ``run`` until it returns with ``stopping()`` true; restart it after a crash."""
    backoff = FIRST_BACKOFF
    while True:
        started = time.monotonic()
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever it was, the loop must come back
            state.restarts += 1
            state.last_error = f"{type(exc).__name__}: {exc}"[:500]
            state.last_crash_at = time.time()
            if time.monotonic() - started >= HEALTHY_SECONDS:
                backoff = FIRST_BACKOFF
            log.exception("the sessionizer loop crashed (restart %d in %.1f s)",
                          state.restarts, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            continue
        if stopping():
            return
        log.error("the sessionizer loop ended without being stopped; starting it again")
