"""`ClickHouseStore`: the Store on a ClickHouse server over the native protocol
(clickhouse-driver), running the same migrations and SQL as chDB.

Inserts are columnar (one ``INSERT ... VALUES`` block per batch, types converted once per
column). Query parameters are bound by the server (``server_side_params``), the same
``{name:Type}`` syntax chDB uses. A connection error is retried with backoff a few times
(safe for inserts: they carry a deduplication token) and then surfaced as `StoreUnavailable`
naming the server. One client per thread: clickhouse-driver clients are not thread-safe.
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

from services.core.store import (
    STORE_SETTINGS,
    Columns,
    Row,
    StoreError,
    StoreUnavailable,
    as_columns,
    run_migrations,
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NETWORK_ERRORS = (ch_errors.NetworkError, ch_errors.SocketTimeoutError, EOFError, OSError)
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)
T = TypeVar("T")


def _from_ms(ms: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=int(ms))


class ClickHouseStore:
    def __init__(self, url: str) -> None:
        self._url = url
        parts = urlsplit(url)
        self._where = f"{parts.hostname}:{parts.port or 9000}"
        self._local = threading.local()
        self._types: dict[str, dict[str, str]] = {}
        self._types_lock = threading.Lock()

    def describe(self) -> str:
        return f"clickhouse {self._where}"  # never the URL: it may hold a password

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client.from_url(self._url)
            client.settings["server_side_params"] = True
            client.settings.update(STORE_SETTINGS)
            client.connection.context.client_settings["server_side_params"] = True
            self._local.client = client
        return client

    def _call(self, work: Callable[[Client], T]) -> T:
        for delay in (*RETRY_DELAYS, None):
            try:
                return work(self._client())
            except _NETWORK_ERRORS as exc:
                self._local.client = None
                if delay is None:
                    raise StoreUnavailable(
                        f"ClickHouse at {self._where} is unreachable: {exc}") from exc
                time.sleep(delay)
            except ch_errors.Error as exc:
                raise StoreError(str(exc)) from exc
        raise StoreUnavailable(f"ClickHouse at {self._where} is unreachable")

    def migrate(self) -> list[str]:
        return run_migrations(lambda sql: self._call(lambda c: c.execute(sql)), self.query)

    def insert(self, table: str, rows: Sequence[Row] | Columns, *,
               dedup_token: str = "") -> None:
        if not len(rows):
            return
        if not _IDENT.match(table):
            raise StoreError(f"bad table name {table!r}")
        types = self._column_types(table)
        columns = as_columns(rows)
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
        return [dict(zip(names, row, strict=True)) for row in rows]

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
        if column_type == "UUID":
            return lambda value: uuid.UUID(str(value))
        return None
