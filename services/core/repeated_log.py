"""Logging of an error that can repeat once per request or per batch, without a flood.

`RepeatedLog` logs the first occurrence of a cause at once, then at most one summary line
per interval for that cause: ``answering 503: <cause> (N more in the last 10 s)``. A cause
that stays quiet for a whole interval is new again: its next occurrence is logged at once.

The summary is written by a timer on the running event loop when the interval ends, so the
last burst of a fault is counted too; without a running loop (a thread) it is written by the
next occurrence after the interval. At most ``max_causes`` causes are tracked: when that many
are still active, further new causes are counted together as "other causes", so causes that
are all different (an error text holding an id) cannot flood the log either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

OTHER_CAUSES = "other causes"


@dataclass(slots=True)
class _Window:
    since: float  # when the interval began (the clock's seconds)
    more: int = 0  # occurrences since then that were not logged
    timer: asyncio.TimerHandle | None = None


class RepeatedLog:
    """``report(cause)`` in place of ``logger.log(level, template, cause)``."""

    def __init__(self, logger: logging.Logger, template: str, *, level: int = logging.WARNING,
                 interval: float = 10.0, max_causes: int = 32,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.template = template
        self.level = level
        self.interval = interval
        self.max_causes = max_causes
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    def report(self, cause: str, exc_info: BaseException | None = None) -> None:
        """Log ``template % cause`` (with ``exc_info``'s traceback) unless the same cause was
        logged less than an interval ago; then it is counted for the next summary line."""
        now = self.clock()
        key = cause
        if key not in self._windows and len(self._windows) >= self.max_causes:
            self._sweep(now)
            if len(self._windows) >= self.max_causes:
                key = OTHER_CAUSES
        window = self._windows.get(key)
        if window is None or (window.more == 0 and now - window.since >= self.interval):
            self._windows[key] = _Window(now)
            self.logger.log(self.level, self.template, cause, exc_info=exc_info)
            return
        window.more += 1
        if now - window.since >= self.interval:  # no timer ran (no loop): summarise now
            self._summarise(key, window, now)
        elif window.timer is None:
            window.timer = self._arm(window.since + self.interval - now, key)

    def _summarise(self, key: str, window: _Window, now: float) -> None:
        if window.timer is not None:
            window.timer.cancel()
        self.logger.log(self.level, self.template + " (%d more in the last %.0f s)", key,
                        window.more, now - window.since)
        window.since, window.more, window.timer = now, 0, None

    def _arm(self, delay: float, key: str) -> asyncio.TimerHandle | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return loop.call_later(max(delay, 0.0), self._interval_ended, key)

    def _interval_ended(self, key: str) -> None:
        window = self._windows.get(key)
        if window is not None:
            window.timer = None
            if window.more:
                self._summarise(key, window, self.clock())

    def _sweep(self, now: float) -> None:
        """Forget the causes whose interval is over, writing the count of those that have
        one first."""
        for key, window in list(self._windows.items()):
            if now - window.since >= self.interval:
                if window.more:
                    self._summarise(key, window, now)
                del self._windows[key]
