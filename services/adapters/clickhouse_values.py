"""The values `ClickHouseStore` returns: what chDB's JSON output gives for the same result.

The Store seam returns rows as plain dicts, and both Stores must return the same Python
values for the same query. ChdbStore reads ClickHouse's JSON output format (64-bit integers
unquoted); clickhouse-driver decodes the native protocol into richer objects. So each
result column whose type the driver decodes differently gets a converter, built once per
type name:

| type | driver | returned (as in JSON) |
| --- | --- | --- |
| DateTime, DateTime64(s) | datetime | ``YYYY-MM-DD hh:mm:ss[.fff…]`` text, ``s`` digits |
| Date, Date32 | date | ``YYYY-MM-DD`` |
| UUID, IPv4, IPv6 | UUID, ip_address | their text |
| Decimal | Decimal | int when whole, else float |
| Float32, Float64 | float | None for nan/inf; int when whole (as JSON prints it) |
| Tuple | tuple | list; a dict when its elements are named |
| Map | dict | keys as text (JSON object keys) |

Array, Nullable, LowCardinality and SimpleAggregateFunction convert what they hold. Any
other type comes back as the driver gives it (None: no converter, no per-value cost).
Beyond these: DateTime64 of more than 6 digits keeps microseconds (the driver reads no
more), and a String holding invalid UTF-8 comes back as bytes (chDB replaces the bytes).
"""

from __future__ import annotations

import decimal
import functools
import math
import re
import struct
from collections.abc import Callable
from typing import Any

Convert = Callable[[Any], Any]
_NAMED = re.compile(r"^(`(?:[^`\\]|\\.)+`|[A-Za-z_][A-Za-z0-9_]*)\s+(.+)$", re.S)
_INT_RANGE = (-(2**63), 2**64)  # a whole float in here is printed as an integer
_FLOAT32 = struct.Struct("f")


def split_type(type_name: str) -> tuple[str, list[str]]:
    """``Map(String, Array(UInt8))`` -> ("Map", ["String", "Array(UInt8)"]); commas inside
    parentheses and quotes (enum labels, time zones) do not split."""
    name, paren, rest = type_name.strip().partition("(")
    if not paren:
        return name, []
    args, depth, quote, start = [], 0, "", 0
    body = rest[:rest.rindex(")")]
    for i, ch in enumerate(body):
        if quote:
            if ch == quote and body[i - 1] != "\\":
                quote = ""
        elif ch in "'`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(body[start:i].strip())
            start = i + 1
    args.append(body[start:].strip())
    return name.strip(), args


@functools.lru_cache(maxsize=512)
def converter(type_name: str) -> Convert | None:
    """How a driver value of this column type becomes chDB's JSON value (None: as it is)."""
    name, args = split_type(type_name)
    if name in ("Nullable", "LowCardinality", "SimpleAggregateFunction"):
        inner = converter(args[-1])
        if inner is None:
            return None
        return lambda v: None if v is None else inner(v)
    if name == "Array":
        item = converter(args[0])
        return None if item is None else (lambda v: [item(x) for x in v])
    if name == "Tuple":
        return _tuple(args)
    if name == "Map":
        key, value = converter(args[0]) or _same, converter(args[1]) or _same
        return lambda v: {_key(key(k)): value(x) for k, x in v.items()}
    return _scalar(name, args)


def _scalar(name: str, args: list[str]) -> Convert | None:
    if name == "DateTime64":
        scale = int(args[0])
        return lambda v: _datetime_text(v, scale)
    if name == "DateTime":
        return lambda v: _datetime_text(v, 0)
    if name in ("Date", "Date32"):
        return lambda v: v.isoformat()
    if name in ("UUID", "IPv4", "IPv6"):
        return str
    if name.startswith("Decimal"):
        return _decimal
    if name == "Float64":
        return _float
    if name == "Float32":
        return lambda v: _float(_shortest_float32(v))
    return None


def _same(value: Any) -> Any:
    return value


def _key(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _tuple(args: list[str]) -> Convert:
    named = [_NAMED.match(arg) for arg in args]
    if all(named) and args:
        names = [m.group(1).strip("`") for m in named if m]
        items = [converter(m.group(2)) or _same for m in named if m]
        return lambda v: {n: c(x) for n, c, x in zip(names, items, v, strict=True)}
    elements = [converter(arg) or _same for arg in args]
    return lambda v: [c(x) for c, x in zip(elements, v, strict=True)]


def _datetime_text(value: Any, scale: int) -> str:
    text = (f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    if scale:
        text += "." + f"{value.microsecond:06d}"[:scale].ljust(scale, "0")
    return text


def _decimal(value: decimal.Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _float(value: float) -> int | float | None:
    """JSON has no nan or inf (ClickHouse writes null), and ClickHouse writes a whole float
    in range as its shortest digits without a point, which JSON reads back as an integer."""
    if not math.isfinite(value):
        return None
    if value.is_integer() and _INT_RANGE[0] < value < _INT_RANGE[1]:
        return int(decimal.Decimal(repr(value)))
    return value


def _shortest_float32(value: float) -> float:
    """The float32's shortest decimal that reads back as it (what ClickHouse prints), as a
    float: the driver widens 0.1f to 0.10000000149011612."""
    if not math.isfinite(value):
        return value
    for digits in range(1, 10):
        shortest = float(f"{value:.{digits}g}")
        if _FLOAT32.unpack(_FLOAT32.pack(shortest))[0] == value:
            return shortest
    return value
