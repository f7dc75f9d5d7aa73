"""Checking and repairing the embedded queue file (``clickport queue check|repair``).

`inspect` reads what SQLite can still read of a file: ``PRAGMA integrity_check``, and every
message and dead letter it can reach, a window of offsets at a time and, where a window
meets a damaged page, one offset at a time (a point lookup descends to its own leaf page,
so only the rows on damaged pages are lost). It never writes.

`repair` writes a fresh file from what `inspect` read and moves the damaged one aside:

- the messages not consumed yet (at or above the group's committed offset), with their
  offsets, and the streams they were written on, so that a message the Store already has
  (applied but not committed before the damage) is still recognised as a replay;
- a new stream from the head on: the damage may have taken the newest messages, whose
  offsets stored sessions may have applied, and new messages must never reuse them
  (`DiskQueueTransport.new_stream`, docs/delivery.md "When the embedded queue loses
  writes");
- the group offsets and every dead letter it could read, with their ids.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from services.adapters.disk_queue import ADD_STREAM_FIRST_OFFSET, SCHEMA

_WINDOW = 1_000
_SIDE_FILES = ("-wal", "-shm")
Row = tuple[Any, ...]
T = TypeVar("T")


@dataclass
class Inspection:
    path: pathlib.Path
    problems: list[str]  # what integrity_check said (or what stopped it); empty: intact
    messages: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # readable rows
    dead_letters: list[Row] = field(default_factory=list)  # readable rows, all columns
    dead_letters_expected: int | None = None  # the highest id handed out, if readable
    streams: list[tuple[str, int]] | None = None  # (identity, first offset); None: unreadable
    groups: dict[str, int] | None = None  # committed next offset by group; None: unreadable
    head: int | None = None  # the next offset the file would have handed out, if known

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def consumed_below(self) -> int:
        """Offsets below this are consumed by every group (0 when that is not known)."""
        return min(self.groups.values()) if self.groups else 0

    @property
    def unconsumed(self) -> list[int]:
        return sorted(o for o in self.messages if o >= self.consumed_below)

    @property
    def expected_unconsumed(self) -> int | None:
        """How many unconsumed messages the file had (offsets are handed out one by one)."""
        if self.head is None or self.groups is None:
            return None
        return max(0, self.head - self.consumed_below)


def inspect(path: pathlib.Path) -> Inspection:
    """What SQLite can read of the queue file at ``path`` (which must exist)."""
    db = sqlite3.connect(f"file:{path}?mode=rw", uri=True)  # never created here
    try:
        found = Inspection(path, _integrity(db))
        found.streams = _attempt(lambda: _streams(db))
        found.groups = _attempt(lambda: {str(g): int(o) for g, o in db.execute(
            "SELECT grp, next_offset FROM group_offsets")})
        sequence = _attempt(lambda: dict(db.execute("SELECT name, seq FROM sqlite_sequence")))
        bounds = _attempt(lambda: db.execute(
            "SELECT MIN(offset), MAX(offset) FROM messages").fetchone())
        low, high = bounds if bounds else (None, None)
        highest = max([int(v) for v in (high, (sequence or {}).get("messages")) if v is not None]
                      + [o - 1 for o in (found.groups or {}).values()], default=None)
        if highest is not None:
            found.head = highest + 1
            first = int(low) if low is not None else min((found.groups or {}).values(),
                                                          default=1)
            for row in _rows(db, "messages", "offset", "offset, key, value", first, highest):
                found.messages[int(row[0])] = (bytes(row[1]), bytes(row[2]))
        letters = (sequence or {}).get("dead_letters")
        if letters is not None:
            found.dead_letters_expected = int(letters)
            found.dead_letters = list(_rows(
                db, "dead_letters", "id",
                "id, reason, detail, partition, offset, at_ms, key, value", 1, int(letters)))
        return found
    finally:
        db.close()


def _integrity(db: sqlite3.Connection) -> list[str]:
    """integrity_check's findings; when it stops at a page it cannot read, the table (or
    tables) whose own check stops there too."""
    try:
        said = [str(row[0]) for row in db.execute("PRAGMA integrity_check(100)")]
    except sqlite3.Error as exc:
        tables = _attempt(lambda: [str(r[0]) for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]) or []
        return [f"{table}: {error}" for table in tables
                if (error := _table_check(db, table))] or [str(exc)]
    return [] if said == ["ok"] else said


def _table_check(db: sqlite3.Connection, table: str) -> str:
    try:
        said = [str(row[0]) for row in db.execute(f"PRAGMA integrity_check('{table}')")]
    except sqlite3.Error as exc:
        return str(exc)
    return "" if said == ["ok"] else "; ".join(said)


def _streams(db: sqlite3.Connection) -> list[tuple[str, int]]:
    try:
        rows = db.execute("SELECT id, first_offset FROM queue_identity "
                          "ORDER BY first_offset, rowid").fetchall()
    except sqlite3.OperationalError:  # a file from before streams: one, from offset 0
        rows = [(r[0], 0) for r in db.execute("SELECT id FROM queue_identity LIMIT 1")]
    return [(str(identity), int(first)) for identity, first in rows]


def _attempt(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except sqlite3.Error:
        return None


def _rows(db: sqlite3.Connection, table: str, key: str, columns: str, first: int, last: int
          ) -> Iterator[Row]:
    """Every readable row of ``table`` whose integer ``key`` is in ``first..last``."""
    for start in range(first, last + 1, _WINDOW):
        end = min(start + _WINDOW, last + 1)
        try:
            yield from db.execute(f"SELECT {columns} FROM {table} WHERE {key} >= ? AND {key} < ?"
                                  f" ORDER BY {key}", (start, end)).fetchall()
            continue
        except sqlite3.Error:
            pass  # a damaged page in the window: look the window's rows up one by one
        for one in range(start, end):
            try:
                yield from db.execute(f"SELECT {columns} FROM {table} WHERE {key} = ?",
                                      (one,)).fetchall()
            except sqlite3.Error:
                continue


@dataclass(frozen=True)
class Repaired:
    found: Inspection
    moved_to: pathlib.Path
    salvaged: int  # unconsumed messages written to the fresh file
    dead_letters: int
    new_stream_from: int  # the offset new messages start at, on a new stream
    streams_kept: bool  # False: the old streams were unreadable; salvaged ones got a new one


def repair(path: pathlib.Path, now: dt.datetime | None = None) -> Repaired:
    """Move the damaged file at ``path`` aside (``-wal`` and ``-shm`` with it) and put a fresh
    one in its place holding what could be read. The caller makes sure nothing has it open."""
    found = inspect(path)
    salvaged = found.unconsumed
    known_ends = [*salvaged, *(o - 1 for o in (found.groups or {}).values()),
                  *(first for _, first in (found.streams or []))]
    head = max([found.head or 1, *(o + 1 for o in known_ends)])
    fresh = path.with_name(path.name + ".repairing")
    fresh.unlink(missing_ok=True)
    db = sqlite3.connect(fresh, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        db.execute(ADD_STREAM_FIRST_OFFSET)
        db.execute("BEGIN")
        # The old streams with a new one from the head on; when they are unreadable, the new
        # one from 0 (the salvaged messages on it too: see `Repaired.streams_kept`).
        streams = [*found.streams, (uuid.uuid4().hex, head)] if found.streams else [
            (uuid.uuid4().hex, 0)]
        db.executemany("INSERT INTO queue_identity (id, first_offset) VALUES (?, ?)", streams)
        db.executemany("INSERT INTO messages (offset, key, value) VALUES (?, ?, ?)",
                       [(o, *found.messages[o]) for o in salvaged])
        db.executemany("INSERT INTO group_offsets (grp, next_offset) VALUES (?, ?)",
                       sorted((found.groups or {}).items()))
        db.executemany("INSERT INTO dead_letters (id, reason, detail, partition, offset, at_ms, "
                       "key, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", found.dead_letters)
        # AUTOINCREMENT goes on after the highest number ever handed out, not the highest kept.
        db.execute("DELETE FROM sqlite_sequence WHERE name IN ('messages', 'dead_letters')")
        letters = max([found.dead_letters_expected or 0, *(int(r[0]) for r in found.dead_letters)])
        db.executemany("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                       [("messages", head - 1), ("dead_letters", letters)])
        db.execute("COMMIT")
    finally:
        db.close()
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    moved_to = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", *_SIDE_FILES):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, moved_to.with_name(moved_to.name + suffix))
    for suffix in _SIDE_FILES:
        fresh.with_name(fresh.name + suffix).unlink(missing_ok=True)  # closed: all in the file
    os.replace(fresh, path)
    return Repaired(found, moved_to, len(salvaged), len(found.dead_letters), head,
                    bool(found.streams))
