"""Country from the client IP (I2), only when a MaxMind database is configured.

``CLICKPORT_GEOIP_DB`` names a GeoLite2/GeoIP2 Country (or City) ``.mmdb`` file; it is read
with MaxMind's `maxminddb` reader (the optional extra ``clickport[geoip]``), memory-mapped
once at start. Without a database the country stays "". The lookup keeps nothing: no IP is
cached or logged here.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

CountryOf = Callable[[str], str]  # client IP -> ISO 3166-1 alpha-2 code, or ""


class GeoIpError(RuntimeError):
    """The configured database cannot be used (missing package, unreadable file)."""


class Reader(Protocol):
    def get(self, ip_address: str) -> Any: ...


class CountryLookup:
    """``lookup(ip)``: the record's ``country.iso_code``, falling back to
    ``registered_country`` (anycast and satellite ranges), "" when unknown or not an IP."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def __call__(self, ip: str) -> str:
        try:
            record = self._reader.get(ip)
        except ValueError:  # not an IP address (e.g. a unix socket peer)
            return ""
        if not isinstance(record, Mapping):
            return ""
        for key in ("country", "registered_country"):
            place = record.get(key)
            if isinstance(place, Mapping):
                code = place.get("iso_code")
                if isinstance(code, str) and len(code) == 2:
                    return code.upper()
        return ""


def open_country_lookup(path: pathlib.Path) -> CountryLookup:
    """Open the database at ``path``; raises `GeoIpError` naming what is wrong."""
    try:
        import maxminddb
    except ImportError:
        raise GeoIpError("CLICKPORT_GEOIP_DB is set but the maxminddb package is missing: "
                         "pip install 'clickport[geoip]'") from None
    try:
        return CountryLookup(maxminddb.open_database(str(path)))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise GeoIpError(f"cannot read the GeoIP database {path}: {exc}") from exc
