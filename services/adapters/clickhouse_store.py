"""`ClickHouseStore`: the Store on a ClickHouse server over the native protocol
(clickhouse-driver), running the same migrations and SQL as chDB.

Inserts are columnar (one ``INSERT ... VALUES`` block per batch, types converted once per
column). Query parameters are bound by the server (``server_side_params``, given when the
client is built: the driver reads its client settings only then), the same ``{name:Type}``
syntax chDB uses. Result values become what chDB's JSON gives (clickhouse_values.py), so
both Stores return the same rows. A connection error is retried with backoff a few times
(safe for inserts: they carry a deduplication token) and then surfaced as
`StoreUnavailable` naming the server; an error the server answers with is
`StoreUnavailable` or `StoreRejected` by its code. One client per thread: clickhouse-driver
clients are not thread-safe. `migrate` creates the URL's database when it is missing.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
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
T = TypeVar("T")


def _from_ms(ms: int | dt.datetime) -> dt.datetime:
    """Integer milliseconds (the seam's form) to the driver's datetime. A datetime is taken
    as it is, naive as UTC, because chDB's Arrow column takes one that way too."""
    if isinstance(ms, dt.datetime):
        return ms if ms.tzinfo is not None else ms.replace(tzinfo=dt.UTC)
    return _EPOCH + dt.timedelta(milliseconds=int(ms))


def _client_for(url: str, database: str | None = None) -> Client:
    host, options = parse_url(url)
    if database is not None:
        options["database"] = database
    settings = {**options.pop("settings", {}), **STORE_SETTINGS, **SERVER_SETTINGS,
                "server_side_params": True}
    return Client(host, settings=settings, **options)


class ClickHouseStore:
    def __init__(self, url: str) -> None:
        self._url = url
        parts = urlsplit(url)
        self._where = f"{parts.hostname}:{parts.port or 9000}"
        self._database = parts.path.lstrip("/") or "default"
        self._local = threading.local()
        self._types: dict[str, dict[str, str]] = {}
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
        types = self._column_types(table)
        columns = as_columns(rows)
        unknown = [c for c in columns if c not in types]
        if unknown:
            raise StoreRejected(f"{table} has no column(s) {', '.join(unknown)}")
        data: list[Sequence[Any]] = []
        for name, values in columns.items():
            convert = self._converter(types.get(name, ""))
            data.append(values if convert is None else [convert(value) for value in values])
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else {}
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
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

    def _column_types(self, table: str) -> dict[str, str]:
        with self._types_lock:
            if table not in self._types:
                rows = self.query("SELECT name, type FROM system.columns WHERE database = "
                                  "currentDatabase() AND table = {t:String}", {"t": table})
                self._types[table] = {r["name"]: r["type"] for r in rows}
            return self._types[table]

    @staticmethod
    def _converter(column_type: str) -> Callable[[Any], Any] | None:
        """How a value of ours becomes the driver's for this column (None: as it is)."""
        if column_type.startswith("DateTime64"):
            return _from_ms
        if column_type.startswith("Array(DateTime64"):
            return lambda values: [_from_ms(value) for value in values]
        if column_type == "Date":
            return _to_date
        if column_type == "UUID":
            return lambda value: uuid.UUID(str(value))
        return None


def _to_date(value: Any) -> dt.date:
    """Rows carry a day as ``YYYY-MM-DD`` text (chDB parses it); the driver wants a date."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
