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
    """The Store could not do what was asked (unreachable, rejected the query, ...)."""


class StoreUnavailable(StoreError):
    """The Store cannot be reached right now; the caller may retry later."""


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

    def close(self) -> None: ...


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(directory: pathlib.Path = MIGRATIONS_DIR) -> list[Migration]:
    """The numbered migrations in order, each split into its statements."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise StoreError(f"migration file name must look like 001_name.sql: {path.name}")
        found.append(Migration(int(match.group(1)), path.name, split_statements(path.read_text())))
    return found


def split_statements(sql: str) -> tuple[str, ...]:
    """Split a migration on ``;`` at line ends, dropping ``--`` comment lines."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return tuple(part.strip() for part in re.split(r";\s*(?:\n|$)", body) if part.strip())


def run_migrations(execute: Callable[[str], object],
                   query: Callable[[str], list[dict[str, Any]]]) -> list[str]:
    """Apply the migrations a Store has not applied yet, recording each; returns their names.
    Both Stores call this with their own ``execute`` and ``query``."""
    execute(MIGRATIONS_TABLE)
    applied = {int(row["version"]) for row in query("SELECT version FROM schema_migrations")}
    done = []
    for migration in load_migrations():
        if migration.version in applied:
            continue
        for statement in migration.statements:
            execute(statement)
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
