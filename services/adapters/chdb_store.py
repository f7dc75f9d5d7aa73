"""`ChdbStore`: the Store on embedded ClickHouse (chDB), data on local disk.

chDB holds its data path for one process (a second process opening it fails), so the
embedded product runs in one process and CLI writes go through it. Within the process one
session serves inserts and reads from several threads, one statement at a time (a lock:
concurrent parameterised queries lose their parameters). Inserts are one columnar (Arrow)
batch per call; ``insert_deduplication_token`` makes a retried batch a no-op.
"""

from __future__ import annotations

import json
import pathlib
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pyarrow
from chdb import session as chdb_session

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
_TOKEN = re.compile(r"^[A-Za-z0-9:_.,-]{1,200}$")
# Result types whose JSON numbers can be integers past 64 bits (ClickHouse writes them
# unquoted with output_format_json_quote_64bit_integers = 0): read exactly, as the driver does.
_WIDE_NUMBER = re.compile(r"Int(128|256)|Decimal(128|256)|Decimal\((19|[2-7][0-9]),")


def _arrow_type(column_type: str) -> pyarrow.DataType:
    """The Arrow type that carries a value of our row dicts into a ClickHouse column; the
    INSERT ... SELECT casts it to the column's exact type."""
    if column_type.startswith("DateTime64"):
        return pyarrow.timestamp("ms", tz="UTC")  # rows hold integer milliseconds
    if column_type.startswith("UInt"):
        return pyarrow.uint64()
    if column_type.startswith("Int"):
        return pyarrow.int64()
    if column_type.startswith("Array("):
        return pyarrow.list_(_arrow_type(column_type[len("Array("):-1]))
    return pyarrow.string()


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r",
                          "\0": "\\0"})


def escape_param(value: Any) -> Any:
    """chDB parses a bound String in ClickHouse's escaped text format, so ``a\\b`` would
    arrive as a backspace and a tab would end the value: escape what that format escapes."""
    return value.translate(_ESCAPES) if isinstance(value, str) else value


_ARROW_CHUNK = 1000


def _arrow_column(values: Sequence[Any], kind: pyarrow.DataType) -> pyarrow.ChunkedArray:
    """One column, converted 1,000 values at a time: a conversion holds the GIL throughout,
    and one over a 20,000-row batch's column stalled the event loop that clickport dev
    shares with ingest for 20-24 ms; a chunk holds it about a millisecond."""
    return pyarrow.chunked_array(
        [pyarrow.array(values[start:start + _ARROW_CHUNK], kind)
         for start in range(0, len(values), _ARROW_CHUNK)] or [pyarrow.array([], kind)], kind)


class ChdbStore:
    def __init__(self, path: pathlib.Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._session = chdb_session.Session(str(path))
        except Exception as exc:  # chDB raises plain RuntimeError subclasses
            raise StoreUnavailable(f"cannot open chDB at {path}: {exc}") from exc
        self._session.query("SET output_format_json_quote_64bit_integers = 0")
        for name, value in STORE_SETTINGS.items():
            self._session.query(f"SET {name} = {value}")
        self._columns: dict[str, tuple[dict[str, str], frozenset[str]]] = {}
        self._columns_lock = threading.Lock()
        # One statement at a time: concurrent parameterised queries on one chDB session lose
        # their parameters ("Substitution `s` is not set"), seen with two threads.
        self._session_lock = threading.Lock()
        self.path = path

    def describe(self) -> str:
        return f"chdb {self.path}"

    def migrate(self) -> list[str]:
        return run_migrations(self.execute, self.query)

    def insert(self, table: str, rows: Sequence[Row] | Columns, *,
               dedup_token: str = "") -> None:
        if not len(rows):
            return
        if not _IDENT.match(table):
            raise StoreRejected(f"bad table name {table!r}")
        types = self._column_types_of(table)
        data = as_columns(rows)
        unknown = [c for c in data if c not in types]
        if unknown:
            raise StoreRejected(f"{table} has no column(s) {', '.join(unknown)}")
        # A column that is empty in every row of the batch (no UTM term, no goals, ...) and
        # whose table default is that same zero value is left to the table: no Arrow array to
        # build, and one column fewer for the engine to read from Python.
        zero_default = self._zero_default_of(table)
        columns = [c for c in data if c not in zero_default or any(data[c])]
        # Columnar: one Arrow array per column, read by chDB's Python() table function, which
        # finds ``batch_table`` by name in this frame (3.3x the rows/s of JSONEachRow text).
        batch_table = pyarrow.table({  # noqa: F841 - read by name by Python() below
            name: _arrow_column(data[name], _arrow_type(types[name])) for name in columns})
        # No Replacing merge of the block while inserting: every reader of a versioned table
        # uses FINAL (or tolerates duplicates), which collapses rows of one block as it does
        # rows of two, and chDB's insert takes ~30 % less CPU (9.4 -> 6.5 us per event row).
        settings = ["optimize_on_insert = 0"]
        if dedup_token:
            if not _TOKEN.match(dedup_token):
                raise StoreRejected(f"bad deduplication token {dedup_token!r}")
            settings.append(f"insert_deduplication_token = '{dedup_token}'")
        names = ", ".join(columns)
        sql = (f"INSERT INTO {table} ({names}) SETTINGS {', '.join(settings)} "
               f"SELECT {names} FROM Python(batch_table)")
        try:
            with self._session_lock:
                self._session.query(sql)
        except Exception as exc:
            raise store_error(str(exc)) from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        bound = {name: escape_param(value) for name, value in (params or {}).items()}
        try:
            with self._session_lock:
                result = self._session.query(sql, "JSON", params=bound)
        except Exception as exc:
            raise store_error(str(exc)) from exc
        data = result.bytes()
        if not data:
            return []
        parsed = orjson.loads(data)
        if any(_WIDE_NUMBER.search(column["type"]) for column in parsed["meta"]):
            parsed = json.loads(data)  # orjson reads an integer past 64 bits as a float
        rows: list[dict[str, Any]] = parsed["data"]
        return rows

    def close(self) -> None:
        with self._session_lock:  # waits for a statement still running in another thread
            self._session.close()

    def execute(self, sql: str) -> None:
        try:
            with self._session_lock:
                self._session.query(sql)
        except Exception as exc:
            raise store_error(str(exc)) from exc

    def _column_types_of(self, table: str) -> dict[str, str]:
        return self._describe(table)[0]

    def _zero_default_of(self, table: str) -> frozenset[str]:
        """The columns without a DEFAULT expression: their default is the type's zero."""
        return self._describe(table)[1]

    def _describe(self, table: str) -> tuple[dict[str, str], frozenset[str]]:
        with self._columns_lock:
            if table not in self._columns:
                described = self.query(
                    "SELECT name, type, default_kind FROM system.columns "
                    "WHERE database = currentDatabase() AND table = {t:String}",
                    {"t": table},
                )
                self._columns[table] = ({r["name"]: r["type"] for r in described},
                                        frozenset(r["name"] for r in described
                                                  if not r["default_kind"]))
            return self._columns[table]
