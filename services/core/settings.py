"""One Settings object, read once from ``CLICKPORT_*`` environment variables.

A bad value fails at start with a `SettingsError` naming the variable; secrets are masked in
``repr``. Nothing reads the environment except `Settings.from_env`.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar


class TransportKind(enum.Enum):
    MEMORY = "memory"  # the embedded on-disk queue (SQLite WAL) of the one-process default
    KAFKA = "kafka"


class StoreKind(enum.Enum):
    CHDB = "chdb"
    CLICKHOUSE = "clickhouse"


class BotFilter(enum.Enum):
    ON = "on"
    OFF = "off"


class QueueSync(enum.Enum):
    """When the embedded queue's commit reaches the disk (SQLite's ``synchronous``)."""

    NORMAL = "normal"  # in the WAL before 2xx: survives kill -9, not an OS crash or power loss
    FULL = "full"  # fsync of the WAL before 2xx: survives power loss too


class SettingsError(ValueError):
    """A CLICKPORT_* variable holds a value that cannot be used."""


E = TypeVar("E", bound=enum.Enum)


def _enum(kind: type[E]) -> Callable[[str], E]:
    def parse(raw: str) -> E:
        try:
            return kind(raw.strip().lower())
        except ValueError:
            choices = "|".join(str(m.value) for m in kind)
            raise ValueError(f"expected one of {choices}") from None

    return parse


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low} to {high}")
        return value

    return parse


def _networks(raw: str) -> tuple[str, ...]:
    """Comma-separated IPs or CIDRs, each checked so a typo fails at start."""
    found = _csv(raw)
    for item in found:
        ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
    return found


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _secret(raw: str) -> str:
    return raw


def _file(raw: str) -> pathlib.Path:
    path = pathlib.Path(raw)
    if not path.is_file():
        raise ValueError("no such file")
    return path


def _path_prefixes(raw: str) -> tuple[str, ...]:
    prefixes = _csv(raw)
    for prefix in prefixes:
        if not prefix.startswith("/"):
            raise ValueError(f"each path must start with '/': {prefix!r}")
    return prefixes


@dataclass(frozen=True)
class Settings:
    """Every setting with its default. Field ``x`` is read from ``CLICKPORT_X``."""

    data_dir: pathlib.Path = pathlib.Path(".clickport")
    transport: TransportKind = TransportKind.MEMORY
    store: StoreKind = StoreKind.CHDB
    host: str = "127.0.0.1"
    port: int = 8000
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic: str = "clickport.events"
    kafka_group: str = "clickport-sessionizer"
    kafka_partitions: int = 12
    clickhouse_url: str = field(default="clickhouse://default:@127.0.0.1:9000/default", repr=False)
    queue_max_pending: int = 1_000_000
    queue_sync: QueueSync = QueueSync.NORMAL
    batch_max_events: int = 20_000  # so the 1 s timer, not the size, sets the insert rate
    batch_max_seconds: float = 1.0
    session_idle_seconds: int = 1800
    sessions_max_in_memory: int = 200_000  # past it the least recently touched are evicted
    bot_filter: BotFilter = BotFilter.ON
    rate_limit_per_minute: int = 60
    rate_limit_max_clients: int = 100_000  # clients per minute; new ones past it share a budget
    trusted_proxies: tuple[str, ...] = ()
    visitor_salt_secret: str = field(default="", repr=False)
    max_body_bytes: int = 8192
    header_timeout_seconds: float = 10.0  # request headers not complete by then: 408, closed
    body_timeout_seconds: float = 5.0  # a request body not complete by then: 408, closed
    keep_alive_seconds: int = 5  # an idle keep-alive connection is closed after this
    geoip_db: pathlib.Path | None = None  # a MaxMind .mmdb; none = no country (I2)
    excluded_paths: tuple[str, ...] = ()  # page path prefixes whose beacons are dropped

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            secret = not f.repr
            shown.append(f"{f.name}={'***' if secret and value else value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            var = f"CLICKPORT_{name.upper()}"
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{var}={raw!r}: {exc}") from None
        values.update(overrides)
        return cls(**values)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "data_dir": pathlib.Path,
    "transport": _enum(TransportKind),
    "store": _enum(StoreKind),
    "host": str,
    "port": _int(0, 65535),
    "kafka_bootstrap": str,
    "kafka_topic": str,
    "kafka_group": str,
    "kafka_partitions": _int(1, 10_000),
    "clickhouse_url": _secret,
    "queue_max_pending": _int(1, 100_000_000),
    "queue_sync": _enum(QueueSync),
    "batch_max_events": _int(1, 1_000_000),
    "batch_max_seconds": _float(0.01, 60.0),
    "session_idle_seconds": _int(1, 7 * 86400),
    "sessions_max_in_memory": _int(10, 100_000_000),
    "bot_filter": _enum(BotFilter),
    "rate_limit_per_minute": _int(0, 10_000_000),
    "rate_limit_max_clients": _int(1, 100_000_000),
    "trusted_proxies": _networks,
    "visitor_salt_secret": _secret,
    "max_body_bytes": _int(256, 1_048_576),
    "header_timeout_seconds": _float(0.1, 3600.0),
    "body_timeout_seconds": _float(0.1, 3600.0),
    "keep_alive_seconds": _int(1, 3600),
    "geoip_db": _file,
    "excluded_paths": _path_prefixes,
}
