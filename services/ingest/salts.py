"""`SaltBook`: the random daily salts behind the visitor id (I3), shared by every ingest
replica through the Store and forgotten when their day is over.

Guarantees (the argument is in docs/ingest.md):

- A day's salt is 256 random bits, never derived from anything, so once its row is gone
  (table TTL, two days after its day starts) that day's visitor ids can no longer be linked
  to an IP and User-Agent, nor to another day's ids, by anyone, the operator included.
- Every replica uses the same salt for a day: the first candidate inserted wins (insert
  deduplication token ``salt-DAY``) and readers take ``min(salt)`` of the day. Tomorrow's
  salt is created a day ahead, so at midnight every replica already holds it.
- The hot path never touches the Store: ``book(received_ms)`` is a dict lookup. `refresh`
  (run every minute by the composition root) creates and loads salts and forgets
  yesterday's one ``grace_ms`` after midnight.
- The key used for hashing is HMAC-SHA256(pepper, salt). The pepper
  (``CLICKPORT_VISITOR_SALT_SECRET``) lives only in ingest's configuration, so reading the
  salts table alone is not enough to test guessed IPs against stored visitor ids.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable

from services.core.store import Store

log = logging.getLogger("clickport.ingest.salts")
MS_PER_DAY = 86_400_000
DEFAULT_GRACE_MS = 3_600_000  # yesterday's salt stays usable this long after midnight (UTC)
REFRESH_SECONDS = 60.0
TABLE = "visitor_salts"
_EPOCH = datetime.date(1970, 1, 1)
# The table holds a few rows (TTL), so all are read and filtered here: no bound parameters,
# which ChdbStore cannot yet run concurrently with another thread's parameterised query.
_LOAD = "SELECT toString(day) AS d, min(salt) AS s FROM visitor_salts GROUP BY day"


class SaltUnavailable(RuntimeError):
    """No salt is loaded for the day asked about (the Store has been unreachable since before
    that day began). Ingest answers 503: an event without a consistent visitor id must not
    be accepted."""


def day_text(day: int) -> str:
    """Epoch day number -> ``YYYY-MM-DD`` (UTC)."""
    return (_EPOCH + datetime.timedelta(days=day)).isoformat()


def day_number(text: str) -> int:
    return (datetime.date.fromisoformat(text) - _EPOCH).days


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SaltBook:
    def __init__(
        self,
        store: Store,
        *,
        pepper: bytes = b"",
        now_ms: Callable[[], int] = _now_ms,
        grace_ms: int = DEFAULT_GRACE_MS,
        new_salt: Callable[[], str] = lambda: secrets.token_hex(32),
    ) -> None:
        self._store = store
        self._pepper = pepper
        self._now_ms = now_ms
        self._grace_ms = grace_ms
        self._new_salt = new_salt
        self._keys: dict[int, bytes] = {}  # epoch day -> HMAC key; replaced whole, never edited

    def __call__(self, received_ms: int) -> bytes:
        """The hashing key for the UTC day of ``received_ms``; raises `SaltUnavailable`."""
        day = received_ms // MS_PER_DAY
        key = self._keys.get(day)
        if key is None:
            raise SaltUnavailable(f"no visitor salt loaded for {day_text(day)}")
        return key

    def days(self) -> list[str]:
        """The days whose salt is held in memory (for /readyz and tests)."""
        return [day_text(d) for d in sorted(self._keys)]

    @property
    def ready(self) -> bool:
        return self._now_ms() // MS_PER_DAY in self._keys

    def refresh_now(self) -> None:
        """Forget what is past its grace, make sure today's and tomorrow's salts exist, load
        them. Blocking (Store I/O): call `refresh` from async code."""
        now = self._now_ms()
        today = now // MS_PER_DAY
        self._keys = self._usable(self._keys, now)  # even when the Store is down below
        stored = self._load(today - 1)
        missing = [day for day in (today, today + 1) if day not in stored]
        for day in missing:
            self._store.insert(TABLE, [{"day": day_text(day), "salt": self._new_salt()}],
                               dedup_token=f"salt-{day_text(day)}")
        if missing:
            stored = self._load(today - 1)
        keys = self._usable({day: self._derive(salt) for day, salt in stored.items()}, now)
        for day, key in keys.items():
            if day in self._keys and self._keys[day] != key:  # deduplication did not hold
                log.warning("the visitor salt of %s changed; ids of that day split", day_text(day))
        self._keys = keys

    async def refresh(self) -> None:
        await asyncio.to_thread(self.refresh_now)

    async def run(self, interval_s: float = REFRESH_SECONDS) -> None:
        """Refresh forever; a failed round is logged and retried on the next one (tomorrow's
        salt is loaded a day ahead, so a Store outage shorter than a day is invisible)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:  # keep the salts we hold; the next round retries
                log.exception("refreshing visitor salts failed")

    def _usable(self, keys: dict[int, bytes], now: int) -> dict[int, bytes]:
        today = now // MS_PER_DAY
        oldest = today - 1 if now - today * MS_PER_DAY < self._grace_ms else today
        return {day: key for day, key in keys.items() if oldest <= day <= today + 1}

    def _load(self, since: int) -> dict[int, str]:
        found = {day_number(str(row["d"])): str(row["s"]) for row in self._store.query(_LOAD)}
        return {day: salt for day, salt in found.items() if day >= since}

    def _derive(self, salt: str) -> bytes:
        return hmac.new(self._pepper, salt.encode(), hashlib.sha256).digest()
