"""Retrying a dependency that fails for a while (the Store, the dead-letter place): with
backoff, logged once per streak of failures (a warning when it starts, one line when it
ends), and with its age for ``/readyz`` and the metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.core.store import error_summary

log = logging.getLogger("clickport.sessionizer")

RETRY_FIRST, RETRY_MAX = 0.2, 10.0
T = TypeVar("T")


class RetryStreak:
    """The current run of consecutive failures of one dependency, if any."""

    def __init__(self, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.retries = 0  # in this streak
        self.error = ""  # the latest failure
        self._since: float | None = None
        self._clock = clock

    def failed(self, error: Exception) -> None:
        self.error = error_summary(str(error))
        if self._since is None:
            self._since, self.retries = self._clock(), 0
            log.warning("%s failing, retrying with backoff until it recovers: %s",
                        self.what, self.error)
        self.retries += 1

    def ended(self) -> None:
        """The dependency answered (a rejection counts: it is reachable again)."""
        if self._since is not None:
            log.info("%s recovered after %d retries / %.1f s", self.what, self.retries,
                     self.seconds())
            self._since = None

    @property
    def active(self) -> bool:
        return self._since is not None

    def seconds(self) -> float:
        """How long the streak has lasted; 0.0 when there is none."""
        return 0.0 if self._since is None else self._clock() - self._since

    def describe(self) -> str:
        if self._since is None:
            return "ok"
        return f"retrying since {self.seconds():.0f} s: {self.error}"


async def retrying(work: Callable[[], Awaitable[T]], streak: RetryStreak,
                   transient: type[Exception] | tuple[type[Exception], ...],
                   on_retry: Callable[[], None]) -> T:
    """``work()`` until it succeeds or raises something not ``transient``; between tries a
    delay doubling from `RETRY_FIRST` to `RETRY_MAX`. Nothing is given up."""
    delay = RETRY_FIRST
    while True:
        try:
            result = await work()
        except transient as exc:
            streak.failed(exc)
            on_retry()
            log.debug("%s failed, retrying in %.1fs: %s", streak.what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
            continue
        except Exception:
            streak.ended()
            raise
        streak.ended()
        return result
