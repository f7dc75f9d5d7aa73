"""`ClickHouseStore`: the Store on a ClickHouse server over the native protocol
(clickhouse-driver), running the same migrations and SQL as chDB.

Inserts are columnar: one Native block per batch, sent to ``INSERT ... SELECT ... FROM
input(...)`` in types the driver writes without a Python step per value (`_wire`), which
the server then converts: text for LowCardinality, UUID and Date columns, integer
milliseconds for DateTime64. Like ChdbStore's, they leave a column that is empty in the
whole batch to its table default, and skip the Replacing merge of the block. Query
parameters are bound by the server (``server_side_params``, given when the client is
built: the driver reads its client settings only then), the same ``{name:Type}`` syntax
chDB uses. Result values become what chDB's JSON gives (clickhouse_values.py), so both
Stores return the same rows. A connection error is retried with backoff a few times (safe
for inserts: they carry a deduplication token) and then surfaced as `StoreUnavailable`
naming the server; an error the server answers with is `StoreUnavailable` or
`StoreRejected` by its code. One client per thread: clickhouse-driver clients are not
thread-safe. `migrate` creates the URL's database when it is missing.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors
from clickhouse_driver.util.helpers import parse_url

from services.adapters.clickhouse_values import converter
from services.core.store import (
    STORE_SETTINGS,
    Columns,
    Row,
    StoreRejected,
    StoreUnavailable,
    as_columns,
    run_migrations,
    store_error,
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NETWORK_ERRORS = (ch_errors.NetworkError, ch_errors.SocketTimeoutError, EOFError, OSError)
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)
# A server's user profile may turn on what chDB's defaults leave off. The query cache: a
# cached result outlives the data it was read from (the API would keep it under a newer
# part list: day_sums.py), and a query with a non-deterministic function is refused
# outright (``currentDatabase()``, so every insert would fail).
SERVER_SETTINGS = {"use_query_cache": 0}
# Rows per INSERT statement. ``INSERT ... SELECT ... FROM input()`` must get its data as one
# Native block: after a block the driver waits for an answer that this statement gives only
# at its end, so a second block would hang it. The driver cuts blocks at its
# ``insert_block_size``, set to this; a larger batch becomes several statements.
INSERT_BLOCK_ROWS = 1_048_576
T = TypeVar("T")


def _client_for(url: str, database: str | None = None) -> Client:
    host, options = parse_url(url)
    if database is not None:
        options["database"] = database
    settings = {**options.pop("settings", {}), **STORE_SETTINGS, **SERVER_SETTINGS,
                "server_side_params": True, "insert_block_size": INSERT_BLOCK_ROWS}
    return Client(host, settings=settings, **options)


class ClickHouseStore:
    def __init__(self, url: str) -> None:
        self._url = url
        parts = urlsplit(url)
        self._where = f"{parts.hostname}:{parts.port or 9000}"
        self._database = parts.path.lstrip("/") or "default"
        self._local = threading.local()
        self._types: dict[str, tuple[dict[str, str], frozenset[str]]] = {}
        self._types_lock = threading.Lock()

    def describe(self) -> str:
        return f"clickhouse {self._where}"  # never the URL: it may hold a password

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = _client_for(self._url)
        return client

    def _call(self, work: Callable[[Client], T], client: Callable[[], Client] | None = None
              ) -> T:
        for delay in (*RETRY_DELAYS, None):
            try:
                return work((client or self._client)())
            except _NETWORK_ERRORS as exc:
                self._local.client = None
                if delay is None:
                    raise StoreUnavailable(
                        f"ClickHouse at {self._where} is unreachable: {exc}") from exc
                time.sleep(delay)
            except ch_errors.Error as exc:
                raise store_error(str(exc), getattr(exc, "code", None)) from exc
        raise StoreUnavailable(f"ClickHouse at {self._where} is unreachable")

    def migrate(self) -> list[str]:
        self._create_database()
        return run_migrations(self.execute, self.query)

    def _create_database(self) -> None:
        if not _IDENT.match(self._database):
            raise StoreRejected(f"bad database name {self._database!r} in the ClickHouse URL")
        server = _client_for(self._url, database="default")
        try:
            self._call(lambda c: c.execute(f"CREATE DATABASE IF NOT EXISTS {self._database}"),
                       client=lambda: server)
        finally:
            server.disconnect()

    def insert(self, table: str, rows: Sequence[Row] | Columns, *,
               dedup_token: str = "") -> None:
        if not len(rows):
            return
        if not _IDENT.match(table):
            raise StoreRejected(f"bad table name {table!r}")
        types, zero_default = self._describe(table)
        columns = as_columns(rows)
        unknown = [c for c in columns if c not in types]
        if unknown:
            raise StoreRejected(f"{table} has no column(s) {', '.join(unknown)}")
        # A column empty in every row of the batch whose table default is that same zero
        # value is left to the table, as ChdbStore does: nothing to write or send for it.
        names = [c for c in columns if c not in zero_default or any(columns[c])]
        structure, select, data = [], [], []
        for name in names:
            wire = _wire(types[name])
            structure.append(f"{name} {wire.type}")
            select.append(wire.select.format(name))
            data.append(wire.convert(columns[name]))
        sql = (f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(select)} "
               f"FROM input({_literal(', '.join(structure))}) FORMAT Native")
        step = INSERT_BLOCK_ROWS
        if len(rows) <= step:
            self._insert_block(sql, data, dedup_token)
            return
        for part, start in enumerate(range(0, len(rows), step)):  # a token per statement
            self._insert_block(sql, [values[start:start + step] for values in data],
                               f"{dedup_token}:{part}" if dedup_token else "")

    def _insert_block(self, sql: str, data: list[Sequence[Any]], dedup_token: str) -> None:
        # No Replacing merge of the block while inserting, as ChdbStore: every reader of a
        # versioned table uses FINAL (or tolerates duplicates), which collapses rows of one
        # block as it does rows of two.
        settings: dict[str, Any] = {"optimize_on_insert": 0}
        if dedup_token:
            settings["insert_deduplication_token"] = dedup_token
        self._call(lambda c: c.execute(sql, data, settings=settings, columnar=True))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        rows, columns = self._call(
            lambda c: c.execute(sql, dict(params or {}), with_column_types=True))
        names = [name for name, _ in columns]
        # the values chDB's JSON gives (clickhouse_values.py): the same rows from both Stores
        convert = [(i, c) for i, (_, kind) in enumerate(columns) if (c := converter(kind))]
        if convert:
            rows = [list(row) for row in rows]
            for row in rows:
                for i, to_json_value in convert:
                    row[i] = to_json_value(row[i])
        return [dict(zip(names, row, strict=True)) for row in rows]

    def execute(self, sql: str) -> None:
        self._call(lambda c: c.execute(sql))

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.disconnect()

    def _describe(self, table: str) -> tuple[dict[str, str], frozenset[str]]:
        """The table's column types, and its columns without a DEFAULT expression (their
        default is the type's zero value)."""
        with self._types_lock:
            if table not in self._types:
                rows = self.query("SELECT name, type, default_kind FROM system.columns "
                                  "WHERE database = currentDatabase() AND table = {t:String}",
                                  {"t": table})
                self._types[table] = ({r["name"]: r["type"] for r in rows},
                                      frozenset(r["name"] for r in rows
                                                if not r["default_kind"]))
            return self._types[table]


class _Wire:
    """How one column travels: the type of its ``input()`` column, the expression that makes
    the table's value of it (``{}``: the column), and the conversion of our values."""

    __slots__ = ("type", "select", "convert")

    def __init__(self, type_: str, select: str = "{}",
                 convert: Callable[[Sequence[Any]], Sequence[Any]] | None = None) -> None:
        self.type, self.select = type_, select
        self.convert: Callable[[Sequence[Any]], Sequence[Any]] = convert or _as_is


def _as_is(values: Sequence[Any]) -> Sequence[Any]:
    return values


def _millis(values: Sequence[Any]) -> Sequence[Any]:
    """Integer milliseconds (the seam's form). A datetime is taken too, naive as UTC, as
    ChdbStore's Arrow column takes one."""
    return [value if type(value) is int else _ms(value) for value in values]


def _ms(value: Any) -> int:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // dt.timedelta(milliseconds=1)
    return int(value)


def _texts(values: Sequence[Any]) -> Sequence[Any]:
    """UUIDs and days as text (rows may carry `uuid.UUID` or `datetime.date` values)."""
    return [value if type(value) is str else str(value) for value in values]


def _millis_lists(values: Sequence[Any]) -> Sequence[Any]:
    return [_millis(row) for row in values]


def _wire(column_type: str) -> _Wire:
    """The driver writes strings and integers in compiled code, but converts datetimes,
    UUIDs and LowCardinality dictionaries in Python, value by value; so those columns are
    sent as text or integers and converted by the server. Rows carry timestamps as integer
    milliseconds (services.core.store)."""
    if column_type.startswith("LowCardinality("):
        return _wire(column_type[len("LowCardinality("):-1])
    if column_type.startswith("DateTime64"):
        return _Wire("Int64", "fromUnixTimestamp64Milli({})", _millis)
    if column_type.startswith("Array(DateTime64"):
        return _Wire("Array(Int64)", "arrayMap(t -> fromUnixTimestamp64Milli(t), {})",
                     _millis_lists)
    if column_type in ("UUID", "Date"):
        return _Wire("String", convert=_texts)
    if column_type.startswith("Array("):
        inner = _wire(column_type[len("Array("):-1])
        if inner.select == "{}" and inner.convert is _as_is:  # Array(LowCardinality(String))
            return _Wire(f"Array({inner.type})")
    return _Wire(column_type)


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
