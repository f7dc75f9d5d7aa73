"""`DiskQueueTransport`: the embedded default's queue, a SQLite table in WAL mode.

Why SQLite: a well-kept embedded engine with a write-ahead log, in the standard library.
`publish` returns only after the row is committed to the WAL (publishes from one turn of
the event loop share a transaction), so an event answered 2xx survives ``kill -9`` of the
process (an OS crash or power loss can still lose the last
commits unless ``CLICKPORT_QUEUE_SYNC=full``; see docs/delivery.md). The queue is bounded: when
``max_pending`` messages wait unconsumed, `publish` raises `TransportFull` and ingest
answers 503. It has one partition (0), so all events keep their order, and one process uses
it (like chDB, it belongs to the one-process embedded mode).

Streams: offsets are comparable only within a stream (the sessions' replay watermark). A
queue file is one stream, except after `new_stream`: when the file lost its last writes (a
removed ``-wal``, an older copy restored) it hands out offsets the sessionizer has already
seen, so new messages, from the current head on, go on a new stream, while the messages
already in the file keep the stream they were written under (``queue_identity`` holds one row
per stream with its first offset).

A file SQLite finds damaged (at start every page is checked with ``PRAGMA quick_check``;
later, any statement that meets a corrupt page) makes the queue *unusable*: every call then
raises `QueueUnusable`, so ingest answers 503 ``queue_unusable`` and nothing is consumed,
until an operator repairs it (``clickport queue repair``, services/adapters/disk_queue_repair.py).

Dead letters live in the same file (table ``dead_letters``), so setting messages aside
commits the group's offset in the same SQLite transaction, and a replay inserts into
``messages`` and deletes from ``dead_letters`` in one transaction: neither can happen twice
or half (docs/delivery.md).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import pathlib
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from services.core.transport import (
    AssignmentCallback,
    DeadLetter,
    Message,
    QueueUnusable,
    SetAside,
    TransportError,
    TransportFull,
    stream_id,
)

PARTITION = 0
T = TypeVar("T")
_PRUNE_EVERY_COMMITS = 20
_ROWS_PER_INSERT = 64  # one statement per up to 64 messages; each size stays prepared
# The prune runs on the event loop that ingest answers on (clickport dev is one process), and
# SQLite deletes at ~3 us per message: one DELETE of 160,000 consumed messages (20 commits'
# worth) held the loop 0.5 s, which every beacon arriving meanwhile waited out. So it deletes
# a slice at a time (~6 ms) and yields to the loop between slices. (Reads stay whole: a
# read of 20,000 messages takes 49-72 ms, but only a consumer catching up reads that many,
# and smaller reads cost the sessionizer a session reload query per poll.)
_PRUNE_SLICE = 2_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    offset INTEGER PRIMARY KEY AUTOINCREMENT,
    key BLOB NOT NULL,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT PRIMARY KEY,
    next_offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_identity (
    id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL
);
"""
# A file made before streams could change has one identity row without a first offset.
ADD_STREAM_FIRST_OFFSET = ("ALTER TABLE queue_identity "
                        "ADD COLUMN first_offset INTEGER NOT NULL DEFAULT 0")
_NO_LIMIT = 2**63 - 1  # the largest SQLite integer: "every entry"
# SQLite's result codes for a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB). Others (a full
# disk, a lock) say nothing about the file and may pass.
_DAMAGED = frozenset({11, 26})


class DiskQueueTransport:
    def __init__(self, path: pathlib.Path, max_pending: int, *, full_sync: bool = False) -> None:
        self.path = path
        self.max_pending = max_pending
        self.full_sync = full_sync
        self._db: sqlite3.Connection | None = None
        self._head = 0  # offset the next published message will get
        self._tail = 0  # lowest committed next-offset over all groups (what may be pruned)
        self._arrived = asyncio.Event()
        self.stream = 0  # the stream new messages go on (a recreated file gets a new one)
        self._starts: list[int] = [0]  # first offset of each stream, ascending
        self._streams: list[int] = [0]
        self._waiting: list[tuple[bytes, bytes, asyncio.Future[None]]] = []
        # Why the last publish failed in SQLite (a full disk, say; not one refused as full),
        # until one succeeds, and when (time.monotonic()): for /readyz.
        self.write_error = ""
        self.write_failed_at = 0.0
        self.unusable = ""  # why the file cannot be used (see the module docstring), if so

    def describe(self) -> str:
        return f"embedded disk queue {self.path}"

    async def start(self) -> None:
        """Open the file; raises `QueueUnusable` when SQLite cannot use it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self.mark_unusable(str(exc)) from exc
        try:
            self._open(db)
        except sqlite3.Error as exc:
            db.close()
            self._db = None
            raise self.mark_unusable(str(exc)) from exc

    def _open(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit is durable across process death; FULL adds an fsync of the
        # WAL per commit, for power loss (CLICKPORT_QUEUE_SYNC, docs/delivery.md).
        db.execute(f"PRAGMA synchronous={'FULL' if self.full_sync else 'NORMAL'}")
        # Every page, once per start: a damaged page found later would stop the sessionizer
        # at that message after ingest had gone on accepting events into the file.
        found = [str(row[0]) for row in db.execute("PRAGMA quick_check(5)")]
        if found != ["ok"]:
            raise sqlite3.DatabaseError("quick_check: " + "; ".join(found))
        db.executescript(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(queue_identity)")}
        if "first_offset" not in columns:
            db.execute(ADD_STREAM_FIRST_OFFSET)
        if db.execute("SELECT 1 FROM queue_identity").fetchone() is None:
            db.execute("INSERT INTO queue_identity (id, first_offset) VALUES (?, 0)",
                       (uuid.uuid4().hex,))
        self._db = db
        self._load_streams()
        (last,) = db.execute("SELECT COALESCE(MAX(offset), 0) FROM messages").fetchone()
        (seq,) = db.execute(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name='messages'), 0)"
        ).fetchone()
        self._head = max(last, seq) + 1
        (low,) = db.execute("SELECT MIN(next_offset) FROM group_offsets").fetchone()
        (first,) = db.execute("SELECT MIN(offset) FROM messages").fetchone()
        self._tail = low if low is not None else (first if first is not None else self._head)

    def mark_unusable(self, why: str) -> QueueUnusable:
        """From now on every call raises the returned error (see the module docstring)."""
        self.unusable = self.unusable or why
        return QueueUnusable(f"embedded queue {self.path} is unusable: {self.unusable}")

    def failed(self, what: str, exc: sqlite3.Error) -> TransportError:
        """The error to raise for a failed statement; a damaged file makes the queue unusable."""
        # sqlite_errorcode is the extended code; its low byte is the primary one.
        if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _DAMAGED:
            return self.mark_unusable(str(exc))
        return TransportError(f"embedded queue {what} failed: {exc}")

    def pending(self) -> int:
        return self._head - self._tail

    @property
    def head(self) -> int:
        """The offset the next published message will get."""
        return self._head

    def new_stream(self) -> int:
        """Put messages from the current head on a new stream (the file lost writes: see the
        module docstring); returns its id."""
        try:
            self._require_open().execute(
                "INSERT INTO queue_identity (id, first_offset) VALUES (?, ?)",
                (uuid.uuid4().hex, self._head))
        except sqlite3.Error as exc:
            raise self.failed("new stream", exc) from exc
        self._load_streams()
        return self.stream

    def stream_of(self, offset: int) -> int:
        """The stream the message at ``offset`` belongs to."""
        return self._streams[bisect.bisect_right(self._starts, offset) - 1]

    def _load_streams(self) -> None:
        rows = self._require_open().execute(
            "SELECT first_offset, id FROM queue_identity ORDER BY first_offset, rowid").fetchall()
        self._starts = [int(first) for first, _ in rows]
        self._streams = [stream_id("disk-queue", identity) for _, identity in rows]
        self.stream = self._streams[-1]  # where new messages go

    async def publish(self, key: bytes, value: bytes) -> None:
        """Returns once the message is committed. Publishes that arrive in the same turn of
        the event loop share one transaction (group commit): one WAL write for many events."""
        self._require_open()
        if self.pending() + len(self._waiting) >= self.max_pending:
            raise TransportFull(f"embedded queue holds {self.pending()} unconsumed events")
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((key, value, done))
        if len(self._waiting) == 1:
            asyncio.get_running_loop().call_soon(self._commit_waiting)
        await done

    def _commit_waiting(self) -> None:
        batch, self._waiting = self._waiting, []
        db = self._require_open()
        try:
            db.execute("BEGIN IMMEDIATE")
            for start in range(0, len(batch), _ROWS_PER_INSERT):
                rows = batch[start:start + _ROWS_PER_INSERT]
                db.execute(_insert_sql(len(rows)),
                           [part for key, value, _ in rows for part in (key, value)])
            (last,) = db.execute("SELECT last_insert_rowid()").fetchone()
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            error = self.failed("write", exc)
            self.write_error, self.write_failed_at = str(exc), time.monotonic()
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(error)
            return
        self.write_error = ""
        self._head = int(last) + 1
        for _, _, done in batch:
            if not done.done():  # a request that was cancelled no longer waits
                done.set_result(None)
        self._arrived.set()

    def consumer(
        self, group: str, on_assigned: AssignmentCallback, on_revoked: AssignmentCallback
    ) -> DiskQueueConsumer:
        return DiskQueueConsumer(self, group, on_assigned, on_revoked)

    def dead_letters(self) -> DiskQueueDeadLetters:
        return DiskQueueDeadLetters(self)

    async def stop(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _require_open(self) -> sqlite3.Connection:
        if self.unusable:
            raise self.mark_unusable(self.unusable)
        if self._db is None:
            raise TransportError("embedded queue is not open")
        return self._db

    @staticmethod
    def _record_commit(db: sqlite3.Connection, group: str, next_offset: int) -> None:
        db.execute(
            "INSERT INTO group_offsets (grp, next_offset) VALUES (?, ?) "
            "ON CONFLICT(grp) DO UPDATE SET next_offset = excluded.next_offset",
            (group, next_offset),
        )

    def _read_tail(self) -> None:
        """After a commit: the lowest committed offset, below which messages are pruned."""
        (low,) = self._require_open().execute(
            "SELECT MIN(next_offset) FROM group_offsets").fetchone()
        self._tail = int(low)

    def _committed(self, group: str) -> int:
        row = self._require_open().execute(
            "SELECT next_offset FROM group_offsets WHERE grp = ?", (group,)
        ).fetchone()
        if row is not None:
            return int(row[0])
        (first,) = self._require_open().execute("SELECT MIN(offset) FROM messages").fetchone()
        return int(first) if first is not None else self._head


@functools.cache
def _insert_sql(rows: int) -> str:
    """One INSERT of ``rows`` messages: a third to two fifths less CPU per message than
    executemany at 50-200 messages a group (one statement, one sequence update)."""
    return "INSERT INTO messages (key, value) VALUES " + ", ".join(["(?, ?)"] * rows)


class DiskQueueConsumer:
    def __init__(
        self,
        queue: DiskQueueTransport,
        group: str,
        on_assigned: AssignmentCallback,
        on_revoked: AssignmentCallback,
    ) -> None:
        self._queue = queue
        self._group = group
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._position = 0
        self._commits = 0
        self._pruning = False
        self._assigned: frozenset[int] = frozenset()

    async def start(self) -> None:
        self._position = self._queue._committed(self._group)
        self._assigned = frozenset({PARTITION})
        await self._on_assigned(self._assigned)

    def assignment(self) -> frozenset[int]:
        return self._assigned

    async def lag(self) -> int:
        return max(0, self._queue._head - self._position)

    async def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        messages = self._read(max_records)
        if messages:
            return messages
        self._queue._arrived.clear()
        try:
            await asyncio.wait_for(self._queue._arrived.wait(), timeout_s)
        except TimeoutError:
            return []
        return self._read(max_records)

    def _read(self, max_records: int) -> list[Message]:
        try:
            rows = self._queue._require_open().execute(
                "SELECT offset, key, value FROM messages WHERE offset >= ? ORDER BY offset "
                "LIMIT ?", (self._position, max_records)).fetchall()
        except sqlite3.Error as exc:
            raise self._queue.failed("read", exc) from exc
        if not rows:
            return []
        self._position = rows[-1][0] + 1
        queue = self._queue
        if queue.stream_of(rows[0][0]) == queue.stream:  # the usual case: one stream
            stream = queue.stream
            return [Message(PARTITION, offset, key, value, stream) for offset, key, value in rows]
        return [Message(PARTITION, offset, key, value, queue.stream_of(offset))
                for offset, key, value in rows]

    async def commit(self, offsets: Mapping[int, int]) -> None:
        if PARTITION not in offsets:
            return
        try:
            self._queue._record_commit(self._queue._require_open(), self._group,
                                       offsets[PARTITION])
            self._queue._read_tail()
        except sqlite3.Error as exc:
            raise self._queue.failed("commit", exc) from exc
        self._commits += 1
        if self._commits % _PRUNE_EVERY_COMMITS == 0 and not self._pruning:
            self._pruning = True
            try:
                await self._prune()
            finally:
                self._pruning = False

    async def _prune(self) -> None:
        """Delete the messages every group has consumed, `_PRUNE_SLICE` at a time."""
        db = self._queue._require_open()
        while True:
            try:
                (first,) = db.execute("SELECT MIN(offset) FROM messages").fetchone()
                if first is None or first >= self._queue._tail:
                    return
                db.execute("DELETE FROM messages WHERE offset < ?",
                           (min(self._queue._tail, first + _PRUNE_SLICE),))
            except sqlite3.Error as exc:
                raise self._queue.failed("prune", exc) from exc
            await asyncio.sleep(0)

    async def stop(self) -> None:
        revoked, self._assigned = self._assigned, frozenset()
        if revoked:
            await self._on_revoked(revoked)


class DiskQueueDeadLetters:
    """The ``dead_letters`` table of the queue file. Every method is one SQLite transaction
    run on the event loop thread, like `publish`, so none interleaves with another."""

    def __init__(self, queue: DiskQueueTransport) -> None:
        self._queue = queue

    async def put(self, aside: Sequence[SetAside], *, group: str,
                  offsets: Mapping[int, int]) -> None:
        now_ms = int(time.time() * 1000)
        rows = [(part.reason, part.detail, m.partition, m.offset, now_ms, m.key, m.value)
                for part in aside for m in part.messages]

        def work(db: sqlite3.Connection) -> None:
            db.executemany("INSERT INTO dead_letters (reason, detail, partition, offset, "
                           "at_ms, key, value) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            if PARTITION in offsets:
                self._queue._record_commit(db, group, offsets[PARTITION])

        self._transaction("set-aside", work)
        if PARTITION in offsets:
            self._queue._read_tail()

    async def pending(self) -> int:
        (count,) = self._read("SELECT COUNT(*) FROM dead_letters").fetchone()
        return int(count)

    async def entries(self, limit: int) -> list[DeadLetter]:
        rows = self._read("SELECT id, reason, detail, partition, offset, at_ms, key, value "
                          "FROM dead_letters ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [DeadLetter(*row) for row in rows]

    async def replay(self, upto: int | None = None) -> int:
        last = _NO_LIMIT if upto is None else upto

        def work(db: sqlite3.Connection) -> tuple[int, int]:
            moved = db.execute("INSERT INTO messages (key, value) SELECT key, value "
                               "FROM dead_letters WHERE id <= ? ORDER BY id", (last,)).rowcount
            (newest,) = db.execute("SELECT last_insert_rowid()").fetchone()
            db.execute("DELETE FROM dead_letters WHERE id <= ?", (last,))
            return int(moved), int(newest)

        moved, newest = self._transaction("dead-letter replay", work)
        if moved:
            self._queue._head = newest + 1
            self._queue._arrived.set()  # the consumer may be waiting in poll
        return moved

    async def drop(self, upto: int | None = None) -> int:
        last = _NO_LIMIT if upto is None else upto
        return self._transaction("dead-letter drop", lambda db: int(db.execute(
            "DELETE FROM dead_letters WHERE id <= ?", (last,)).rowcount))

    async def close(self) -> None:
        return None  # the queue's connection is the queue's to close

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._queue._require_open().execute(sql, params)
        except sqlite3.Error as exc:
            raise self._queue.failed("read", exc) from exc

    def _transaction(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        db = self._queue._require_open()
        try:
            db.execute("BEGIN IMMEDIATE")
            result = work(db)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise self._queue.failed(what, exc) from exc
        return result
