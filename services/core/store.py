"""The Store seam: where events, sessions and configuration live.

Implementations: `services.adapters.chdb_store.ChdbStore` (embedded, on local disk) and
`services.adapters.clickhouse_store.ClickHouseStore` (a ClickHouse server over the native
protocol). Both run the same numbered SQL files from ``schemas/migrations``. Rows are plain
dicts whose timestamps are integer milliseconds; each Store converts them for its driver.
Read queries bind parameters with ClickHouse's ``{name:Type}`` syntax, never by splicing.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

MIGRATIONS_DIR = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

Row = Mapping[str, Any]


class StoreError(RuntimeError):
    """The Store could not do what was asked. Raised as one of its two kinds, which tell a
    writer whether the same statement can succeed later."""


class StoreUnavailable(StoreError):
    """Transient: unreachable, busy, out of memory or disk, timed out. The same statement
    may succeed later, so a writer retries it."""


class StoreRejected(StoreError):
    """Permanent: the Store refused this statement or its data (a bad type, an unknown column,
    a constraint). Retrying the same batch fails the same way, so a writer sets it aside."""


# ClickHouse error codes that mean "not now" rather than "never" (the names are ClickHouse's
# ErrorCodes): the server or its disk is busy, short of resources or going away.
TRANSIENT_CODES = frozenset({
    3,    # UNEXPECTED_END_OF_FILE
    24,   # CANNOT_WRITE_TO_OSTREAM
    75,   # CANNOT_WRITE_TO_FILE_DESCRIPTOR
    76,   # CANNOT_OPEN_FILE
    95, 96,  # CANNOT_READ_FROM_SOCKET, CANNOT_WRITE_TO_SOCKET
    159, 160,  # TIMEOUT_EXCEEDED, TOO_SLOW
    164,  # READONLY
    173,  # CANNOT_ALLOCATE_MEMORY
    202, 203,  # TOO_MANY_SIMULTANEOUS_QUERIES, NO_FREE_CONNECTION
    209, 210,  # SOCKET_TIMEOUT, NETWORK_ERROR
    225, 242, 244,  # NO_ZOOKEEPER, TABLE_IS_READ_ONLY, UNEXPECTED_ZOOKEEPER_ERROR
    236,  # ABORTED
    241, 243,  # MEMORY_LIMIT_EXCEEDED, NOT_ENOUGH_SPACE
    252,  # TOO_MANY_PARTS
    279, 285, 289,  # ALL_CONNECTION_TRIES_FAILED, TOO_FEW_LIVE_REPLICAS, NOT_IN_QUORUM
    319,  # UNKNOWN_STATUS_OF_INSERT
    364,  # RECEIVED_ERROR_TOO_MANY_REQUESTS
    384,  # PART_IS_TEMPORARILY_LOCKED
    394,  # QUERY_WAS_CANCELLED
    425,  # SYSTEM_ERROR
    439,  # CANNOT_SCHEDULE_TASK
    999, 1000,  # KEEPER_EXCEPTION, POCO_EXCEPTION (file system and network errors)
})
_CODE = re.compile(r"\bCode: (\d+)")
# STD_EXCEPTION: a C++ exception the engine passes on. A file system error among them (chDB's
# data made read-only, permissions taken away, the disk full) is the disk's state, not the
# statement's, so it is transient like NOT_ENOUGH_SPACE; any other stays permanent.
STD_EXCEPTION = 1001
_FILE_SYSTEM = re.compile(r"filesystem error|Read-only file system|Permission denied|"
                          r"No space left on device|Disk quota exceeded")


def store_error(message: str, code: int | None = None) -> StoreError:
    """The kind of error a ClickHouse engine's failure is, from its code (read from the
    message when the driver gives none). Without a code it is taken as transient: the engine
    said nothing about the statement itself."""
    if code is None and (found := _CODE.search(message)):
        code = int(found.group(1))
    if code is None or code in TRANSIENT_CODES:
        return StoreUnavailable(message)
    if code == STD_EXCEPTION and _FILE_SYSTEM.search(message):
        return StoreUnavailable(message)
    return StoreRejected(message)


_STACK_TRACE = re.compile(r"\s*Stack trace.*", re.DOTALL)


def error_summary(message: str) -> str:
    """An error's message on one line, without the stack trace a ClickHouse server appends
    (for logs, ``/readyz`` and a dead letter's detail)."""
    return " ".join(_STACK_TRACE.sub("", message).split())


@runtime_checkable
class Columns(Protocol):
    """A batch as one sequence per column, every column as long as the batch."""

    def __len__(self) -> int: ...

    def columns(self) -> Mapping[str, Sequence[Any]]: ...


def as_columns(rows: Sequence[Row] | Columns) -> Mapping[str, Sequence[Any]]:
    """The batch column by column, whichever form it came in (every row has the first row's
    keys)."""
    if isinstance(rows, Columns):
        return rows.columns()
    return {name: [row[name] for row in rows] for name in rows[0]}


class Store(Protocol):
    def migrate(self) -> list[str]:
        """Apply the migrations not applied yet; returns the names applied now."""
        ...

    def insert(self, table: str, rows: Sequence[Row] | Columns, *,
               dedup_token: str = "") -> None:
        """Insert rows in one batch. Retrying with the same token never writes twice."""
        ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read query with bound parameters; rows as dicts."""
        ...

    def execute(self, sql: str) -> None:
        """Run one statement that returns nothing (DDL, a migration's step)."""
        ...

    def close(self) -> None: ...

    def describe(self) -> str:
        """One line for /readyz, e.g. ``chdb PATH`` or ``clickhouse HOST:PORT`` (no secret)."""
        ...


@dataclass(frozen=True)
class Statement:
    sql: str
    # A query that returns a row once the statement's effect is already there: a restart
    # after it ran skips it (a statement that cannot be repeated, like a RENAME).
    skip_if: str = ""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[Statement, ...]


def load_migrations(directory: pathlib.Path = MIGRATIONS_DIR) -> list[Migration]:
    """The numbered migrations in order, each split into its statements."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise StoreError(f"migration file name must look like 001_name.sql: {path.name}")
        found.append(Migration(int(match.group(1)), path.name, split_statements(path.read_text())))
    return found


_SKIP_IF = "-- skip if:"


def split_statements(sql: str) -> tuple[Statement, ...]:
    """Split a migration on ``;`` at line ends, dropping ``--`` comment lines; a
    ``-- skip if: QUERY`` line gives the statement after it its `Statement.skip_if`."""
    kept = "\n".join(line for line in sql.splitlines()
                     if not line.lstrip().startswith("--") or line.lstrip().startswith(_SKIP_IF))
    statements = []
    for part in re.split(r";\s*(?:\n|$)", kept):
        lines = part.strip().splitlines()
        guards = [line.strip()[len(_SKIP_IF):].strip() for line in lines
                  if line.lstrip().startswith(_SKIP_IF)]
        body = "\n".join(line for line in lines if not line.lstrip().startswith(_SKIP_IF)).strip()
        if len(guards) > 1 or (guards and not body):
            raise StoreError(f"one '{_SKIP_IF}' line before each statement it guards: "
                             f"{part.strip()[:80]!r}")
        if body:
            statements.append(Statement(body, guards[0] if guards else ""))
    return tuple(statements)


def run_migrations(execute: Callable[[str], object],
                   query: Callable[[str], list[dict[str, Any]]]) -> list[str]:
    """Apply the migrations a Store has not applied yet, recording each; returns their names.
    Both Stores call this with their own ``execute`` and ``query``.

    Restart-safe: a migration stopped between two statements is run again from its start,
    so every statement is one that can be repeated (``IF [NOT] EXISTS``, an additive
    ``ALTER``, a copy into a ReplacingMergeTree, whose repeated rows collapse) or carries a
    ``-- skip if:`` guard that sees its effect (tests/integration/test_migrations_resume.py
    stops before every statement of every migration)."""
    execute(MIGRATIONS_TABLE)
    applied = {int(row["version"]) for row in query("SELECT version FROM schema_migrations")}
    done = []
    for migration in load_migrations():
        if migration.version in applied:
            continue
        for statement in migration.statements:
            if statement.skip_if and query(statement.skip_if):
                continue
            execute(statement.sql)
        # the name matched _MIGRATION_NAME, so it is safe inside the literal
        execute("INSERT INTO schema_migrations (version, name) VALUES "
                f"({migration.version}, '{migration.name}')")
        done.append(migration.name)
    return done


# Every versioned row keeps its partition: a session's versions share started_at, an event's
# copies share timestamp, the config tables have one partition. So FINAL never needs to
# merge across partitions, and telling ClickHouse so lets it collapse each partition alone.
FINAL_WITHIN_PARTITIONS = "do_not_merge_across_partitions_select_final"
# events and sessions are partitioned by day (migration 006), and one sessionizer batch can
# write to many days: a long-lived tab's session keeps the partition of the day it started.
# ClickHouse refuses an insert touching more than 100 partitions by default; 0 lifts that.
STORE_SETTINGS = {FINAL_WITHIN_PARTITIONS: 1, "max_partitions_per_insert_block": 0}

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations
(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = MergeTree ORDER BY version
"""
