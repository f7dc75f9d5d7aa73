"""The consumer loop: poll -> apply events to session state -> batch-write -> commit.

Delivery (docs/delivery.md has the argument):
- Offsets are committed only after the batch's event rows and then its session rows are in
  the Store. A crash before the commit replays the batch.
- A replayed event at or below its session's stored ``version`` is skipped; one above it is
  applied again to the reloaded (older) state, giving the same state and the same event row,
  whose ``event_id`` collapses in the ReplacingMergeTree. So a replay changes nothing.
- A write that fails for now (`StoreUnavailable`) is retried with backoff while consumption
  pauses; nothing is dropped. A batch the Store refuses (`StoreRejected`) is set aside: its
  messages go to the transport's dead-letter place together with the offset commit, and its
  sessions are forgotten, so they reload without it. Undecodable messages are set aside too.
  A failing dead-letter write is retried like a Store write.
- On revoke or shutdown: flush, commit, then forget the partitions' sessions.
- Anything else that goes wrong ends `Sessionizer.run` with the open batch and the sessions
  in memory discarded; `services.sessionizer.supervisor` logs it and runs the loop again from
  the committed offsets, where the replay rules above apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from services.core.dead_letters import CORRUPT, STORE_REJECTED, short
from services.core.event import Event, decode_event
from services.core.goals import GOALS_QUERY, Goal, GoalIndex, goal_from_row
from services.core.metrics import Histogram
from services.core.rows import EventBatch, SessionBatch
from services.core.session import apply_event, first_click, is_applied
from services.core.store import (
    Store,
    StoreError,
    StoreRejected,
    StoreUnavailable,
    error_summary,
)
from services.core.transport import (
    Consumer,
    DeadLetters,
    Message,
    SetAside,
    Transport,
    TransportError,
)
from services.sessionizer.retry import RetryStreak, retrying
from services.sessionizer.state import DEFAULT_MAX_IN_MEMORY, SessionTable, load_sessions

log = logging.getLogger("clickport.sessionizer")

GOALS_REFRESH_SECONDS = 5.0  # G5: goal changes reach every sessionizer within 10 s
# How often the dead letters still pending are counted for /readyz and /metrics (on Kafka a
# count reads the dead-letter topic), and right after this worker sets messages aside.
DEAD_LETTERS_COUNT_SECONDS = 5.0
# A batch keeps a few containers per event alive until its insert (messages, goal ids). At
# CPython's default first GC threshold (700) that is a young collection every ~200 events and
# a full one, walking every tracked object of the process, every few batches: 16-19 % of the
# sessionizer's time in the benchmark. Collecting after 50,000 net allocations takes it to
# about 1.5 % (nothing here relies on cycles being freed soon). The Store's inserts run in
# this process, so they run under it too.
GC_FIRST_THRESHOLD = 50_000
# A poll can bring thousands of messages (up to the batch size). Decoding and applying them
# is CPU work on the event loop, which clickport dev shares with ingest: yielding every 256
# messages (~5-8 ms of work) lets ingest's requests in between, at no cost to throughput.
_APPLY_SLICE = 256
# Work waiting (events unread, or a batch not committed) and no commit for this long: the
# loop is stuck (a Store write retried all along, say). A healthy loop commits every batch
# timer (1 s) and a backlog batch within seconds.
STUCK_SECONDS = 60.0
# Buckets of the batch delay (seconds). A healthy worker writes within a batch timer (1 s)
# plus its insert; the upper buckets are a backlog being worked off.
DELAY_BUCKETS = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


@contextlib.contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """The process's first GC threshold at least `GC_FIRST_THRESHOLD` while the worker runs
    (the threshold is process-wide; the previous one is restored after)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], GC_FIRST_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@dataclass
class SessionizerStats:
    consumed: int = 0
    replayed_skipped: int = 0
    corrupt: int = 0
    events_written: int = 0
    sessions_written: int = 0
    inserts: int = 0
    last_batch_size: int = 0
    last_insert_seconds: float = 0.0
    insert_seconds_total: float = 0.0
    store_retries: int = 0
    dead_letter_retries: int = 0  # failed writes to the dead-letter place, retried
    dead_lettered: dict[str, int] = field(default_factory=dict)  # messages set aside, by reason
    # Sessions dropped from memory (they reload when next seen): idle, or past the cap.
    sessions_evicted: dict[str, int] = field(default_factory=lambda: {"idle": 0, "cap": 0})
    sessions_reloaded: int = 0  # sessions not in memory found in the Store
    # Wall-clock time from ingest receiving the batch's oldest event to the batch being in
    # the Store: how stale the dashboard was, at worst, for that batch.
    last_batch_delay_seconds: float = 0.0


@dataclass
class _Batch:
    events: EventBatch = field(default_factory=EventBatch)
    sessions: SessionBatch = field(default_factory=SessionBatch)
    next_offsets: dict[int, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    # The messages whose events are in ``events``, for the dead-letter place should the Store
    # refuse the batch. Only applied ones: a replay skipped here is already stored.
    applied: list[Message] = field(default_factory=list)
    corrupt: list[Message] = field(default_factory=list)
    corrupt_error: str = ""

    def empty(self) -> bool:
        return not self.next_offsets


def content_token(prefix: str, ids: Iterable[str], offsets: Mapping[int, int] | None = None
                  ) -> str:
    """A deduplication token from the batch's content, not its offsets alone: offsets restart
    when a topic or queue is recreated, and a reused token would silently drop a batch.
    ``offsets`` (the batch's next offsets) make a replayed dead letter's rows a new insert:
    they may differ from rows the refused batch did write (first-click marks computed on
    another state), and the newer insert is the one a ReplacingMergeTree keeps."""
    digest = hashlib.blake2b(digest_size=16)
    if offsets:
        digest.update(repr(sorted(offsets.items())).encode())
    for item in ids:
        digest.update(item.encode())
        digest.update(b"\0")
    return prefix + digest.hexdigest()


class Sessionizer:
    def __init__(
        self,
        transport: Transport,
        store: Store,
        *,
        group: str,
        batch_max_events: int,
        batch_max_seconds: float,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        stuck_seconds: float = STUCK_SECONDS,
        sessions_max_in_memory: int = DEFAULT_MAX_IN_MEMORY,
    ) -> None:
        self.transport = transport
        self.store = store
        self.group = group
        self.batch_max_events = batch_max_events
        self.batch_max_seconds = batch_max_seconds
        self.sessions = SessionTable(idle_seconds, sessions_max_in_memory)
        self.stats = SessionizerStats()
        self.batch_delays = Histogram(DELAY_BUCKETS)  # last_batch_delay_seconds of each batch
        self.goals: Sequence[Goal] | GoalIndex = ()
        self._goals_loaded_at = -1e9
        self._clock = clock
        self._batch = _Batch()
        self._consumer: Consumer | None = None
        self._dead_letters: DeadLetters | None = None
        self.store_streak = RetryStreak("store", clock)
        self.dead_letter_streak = RetryStreak("dead-letter place", clock)
        # Dead letters pending in the transport's place (None until first counted), counted in
        # the background: /readyz and /metrics never wait on Kafka.
        self.dead_letters_pending: int | None = None
        self.dead_letters_unknown = ""  # why the last count failed, if it did
        self._recount = asyncio.Event()
        self._stopping = asyncio.Event()
        # A rebalance callback may run while the loop awaits inside handle(); the lock keeps
        # a revoke's flush from interleaving with a half-applied poll.
        self._lock = asyncio.Lock()
        self.running = False
        # When the loop last moved on: committed a batch, or found nothing left to read.
        # Readiness calls it stuck when work waits and this is too old.
        self.progress_at = clock()
        self.stuck_seconds = stuck_seconds
        self._crashed = False  # the current run ended in an exception (see `run`)

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def wait_stopping(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for `stop`; True if it came."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    def now(self) -> float:
        """The worker's clock (`progress_at` is on it)."""
        return self._clock()

    def busy(self) -> bool:
        """An open batch waits to be written (events applied, offsets not committed)."""
        return not self._batch.empty()

    async def run(self) -> None:
        """One run of the loop, until `stop`: from the last committed offsets, with no session
        in memory and an empty batch. An exception ends it with the open batch and the
        sessions in memory discarded, never flushed (an exception in the middle of applying a
        message would otherwise commit its offset unapplied); `Supervisor` runs it again, and
        what this run applied but did not write is replayed from the committed offsets."""
        self._discard()
        self._crashed = False
        consumer = self.transport.consumer(self.group, self._on_assigned, self._on_revoked)
        self._consumer = consumer
        await consumer.start()
        self.running = True
        counter = asyncio.create_task(self._count_dead_letters(), name="dead-letter count")
        try:
            with fewer_gc_passes():
                while not self._stopping.is_set():
                    await self._refresh_goals()
                    room = self.batch_max_events - len(self._batch.events)
                    messages = await consumer.poll(max(room, 1), timeout_s=0.1)
                    async with self._lock:
                        if messages:
                            await self.handle(messages)
                        else:
                            self.progress_at = self._clock()  # nothing left to read
                        if self._batch_due():
                            await self.flush()
                            self.stats.sessions_evicted["idle"] += self.sessions.evict_idle(
                                time.monotonic())
                        if self.sessions.over_cap():
                            await self._evict_to_cap()
                async with self._lock:
                    await self.flush()
        except Exception:
            self._crashed = True
            self._discard()
            raise
        finally:
            self.running = False
            try:
                await consumer.stop()
            finally:
                counter.cancel()
                await asyncio.gather(counter, return_exceptions=True)
                if self._dead_letters is not None:
                    await self._dead_letters.close()

    async def _evict_to_cap(self) -> None:
        """Past the cap: flush first, so that every session in memory has its newest state in
        the Store (a session evicted with state not written yet would reload older, and its
        next event would apply to that), then evict the least recently touched."""
        await self.flush()
        self.stats.sessions_evicted["cap"] += self.sessions.evict_least_recent()

    def _discard(self) -> None:
        self._batch = _Batch()
        self.sessions.clear()

    def _batch_due(self) -> bool:
        if self._batch.empty():
            return False
        full = len(self._batch.events) >= self.batch_max_events
        return full or self._clock() - self._batch.started >= self.batch_max_seconds

    async def _refresh_goals(self) -> None:
        if self._clock() - self._goals_loaded_at < GOALS_REFRESH_SECONDS:
            return
        try:
            rows = await asyncio.to_thread(self.store.query, GOALS_QUERY)
        except StoreError as exc:
            log.warning("goals refresh failed, keeping %d goals: %s", len(self.goals), exc)
            return
        self.goals = GoalIndex([goal_from_row(r) for r in rows])
        self._goals_loaded_at = self._clock()

    async def handle(self, messages: list[Message]) -> None:
        """Apply polled messages to session state and add their rows to the open batch."""
        events: list[Event | None] = []  # None: a corrupt message, skipped in its turn
        for i, message in enumerate(messages):
            if i and i % _APPLY_SLICE == 0:
                await asyncio.sleep(0)
            try:
                events.append(decode_event(message.value))
            except msgspec.DecodeError as exc:
                # Ingest wrote it, so this is a bug or corruption: count it loudly and set it
                # aside (with the batch's commit), so one bad message cannot stop the pipeline.
                self.stats.corrupt += 1
                log.error("corrupt message at %d/%d set aside: %s", message.partition,
                          message.offset, exc)
                self._batch.corrupt.append(message)
                self._batch.corrupt_error = str(exc)
                events.append(None)
        partition_of = {(e.site, e.sid): m.partition
                        for m, e in zip(messages, events, strict=True) if e is not None}
        missing = self.sessions.missing(partition_of)
        if missing:
            # A refused reload is retried too: it is our query, not the events' data, and
            # setting the events aside would not make the next one succeed.
            loaded = await self._with_retry(lambda: load_sessions(self.store, missing),
                                            transient=StoreError)
            now = time.monotonic()
            for key, state in loaded.items():
                self.sessions.put(key, partition_of[key], state, now)
            self.stats.sessions_reloaded += len(loaded)
        now = time.monotonic()  # one touch time for the poll: one float, not one per session
        for i, (message, event) in enumerate(zip(messages, events, strict=True)):
            if i and i % _APPLY_SLICE == 0:
                await asyncio.sleep(0)
            if event is None:
                self._advance(message)
            else:
                self._apply_one(message, event, now)

    async def lag(self) -> int:
        return await self._consumer.lag() if self._consumer is not None else 0

    def refresh_goals_soon(self) -> None:
        """Reload goals on the next loop turn (the API calls this after a goal changes)."""
        self._goals_loaded_at = -1e9

    def _apply_one(self, message: Message, event: Event, now: float) -> None:
        key = (event.site, event.sid)
        state = self.sessions.get(key)
        self.stats.consumed += 1
        self._advance(message)
        if is_applied(state, message.offset, message.stream):
            self.stats.replayed_skipped += 1
            return
        new_state, converted = apply_event(state, event, message.offset, self.goals,
                                           message.stream)
        if state is None:  # keyed by the state's shared site string, not the event's copy
            key = (new_state.site, new_state.sid)
        self.sessions.put(key, message.partition, new_state, now)
        self._batch.events.add(event, converted, first_click(state, new_state, event))
        self._batch.sessions.put(key, new_state)
        self._batch.applied.append(message)

    def _advance(self, message: Message) -> None:
        self._batch.next_offsets[message.partition] = message.offset + 1

    async def flush(self) -> None:
        """Write the batch (events, then sessions) and commit its offsets; a batch the Store
        refuses, and corrupt messages, are set aside with the commit instead."""
        batch, self._batch = self._batch, _Batch()
        if batch.empty():
            return
        aside: list[SetAside] = []
        try:
            await self._write(batch)
        except StoreRejected as exc:
            # The batch's sessions are ahead of the Store by this batch: forget them, so each
            # reloads at its stored version, which does not have these events.
            self.sessions.forget(batch.sessions.states)
            detail = short(error_summary(str(exc)))
            log.error("the Store refused a batch of %d events (%d sessions); it is set aside "
                      "as dead letters and its sessions reload from the Store: %s",
                      len(batch.applied), len(batch.sessions), detail)
            aside.append(SetAside(batch.applied, STORE_REJECTED, detail))
        if batch.corrupt:
            aside.append(SetAside(batch.corrupt, CORRUPT, short(batch.corrupt_error)))
        if aside:
            await self._set_aside(aside, batch.next_offsets)
        elif self._consumer is not None:
            await self._consumer.commit(batch.next_offsets)
        self.progress_at = self._clock()

    async def _write(self, batch: _Batch) -> None:
        started = time.perf_counter()
        if batch.events:
            events_token = content_token("e", (e.id for e in batch.events.events),
                                         batch.next_offsets)
            await self._with_retry(
                lambda: self.store.insert("events", batch.events, dedup_token=events_token)
            )
        if batch.sessions:
            sessions_token = content_token("s", (f"{s.site}/{s.sid}@{s.events}"
                                                 for s in batch.sessions.states.values()))
            await self._with_retry(
                lambda: self.store.insert("sessions", batch.sessions, dedup_token=sessions_token)
            )
        self.stats.last_insert_seconds = time.perf_counter() - started
        self.stats.insert_seconds_total += self.stats.last_insert_seconds
        self.stats.inserts += bool(batch.events) + bool(batch.sessions)
        self.stats.events_written += len(batch.events)
        self.stats.sessions_written += len(batch.sessions)
        self.stats.last_batch_size = len(batch.events)
        if batch.events:
            # Ingest's clock against ours: skew between hosts shifts it (never below 0).
            delay = max(0.0, time.time() - batch.events.oldest_ms / 1000)
            self.stats.last_batch_delay_seconds = delay
            self.batch_delays.observe(delay)

    async def _set_aside(self, aside: list[SetAside], offsets: Mapping[int, int]) -> None:
        """Dead-letter ``aside`` with the batch's commit, retried until it is done."""
        letters = self._letters()

        def counted() -> None:
            self.stats.dead_letter_retries += 1

        await retrying(lambda: letters.put(aside, group=self.group, offsets=offsets),
                       self.dead_letter_streak, TransportError, counted)
        for part in aside:
            done = self.stats.dead_lettered
            done[part.reason] = done.get(part.reason, 0) + len(part.messages)
        self.recount_dead_letters()

    def recount_dead_letters(self) -> None:
        """Count the pending dead letters now (after a put, a replay or a drop)."""
        self._recount.set()

    def _letters(self) -> DeadLetters:
        if self._dead_letters is None:
            self._dead_letters = self.transport.dead_letters()
        return self._dead_letters

    async def _count_dead_letters(self) -> None:
        letters = self._letters()
        while True:
            self._recount.clear()
            try:
                self.dead_letters_pending = await letters.pending()
                self.dead_letters_unknown = ""
            except TransportError as exc:  # keep the last count; the next round tries again
                self.dead_letters_unknown = str(exc)
                log.debug("cannot count the dead letters: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recount.wait(), DEAD_LETTERS_COUNT_SECONDS)

    async def _with_retry(self, work: Callable[[], Any],
                          transient: type[Exception] = StoreUnavailable) -> Any:
        """Run blocking Store ``work`` in a thread, retrying ``transient`` failures."""
        def counted() -> None:
            self.stats.store_retries += 1

        def attempt() -> Awaitable[Any]:
            return asyncio.to_thread(work)

        return await retrying(attempt, self.store_streak, transient, counted)

    async def _on_assigned(self, partitions: frozenset[int]) -> None:
        log.info("assigned partitions %s", sorted(partitions))

    async def _on_revoked(self, partitions: frozenset[int]) -> None:
        async with self._lock:
            if not self._crashed:  # after a crash there is nothing to flush (see `run`)
                await self.flush()
            self.sessions.drop_partitions(partitions)
        log.info("revoked partitions %s", sorted(partitions))
