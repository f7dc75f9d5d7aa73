"""Country from a GeoIP database (I2), read with MaxMind's reader from a tiny .mmdb that the
test writes with mmdb-writer (both in the test extra)."""

from __future__ import annotations

import asyncio
import pathlib

import httpx
import orjson
import pytest
from helpers import new_sid, pageview
from starlette.applications import Starlette

from services.core.event import decode_event
from services.ingest.app import IngestStats, ingest_routes
from services.ingest.geoip import CountryLookup, GeoIpError, open_country_lookup

maxminddb = pytest.importorskip("maxminddb")
mmdb_writer = pytest.importorskip("mmdb_writer")
netaddr = pytest.importorskip("netaddr")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture(scope="module")
def mmdb(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    writer = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True,
                                    database_type="GeoLite2-Country")
    writer.insert_network(netaddr.IPSet(["81.2.69.0/24"]),
                          {"country": {"iso_code": "GB"}, "registered_country": {"iso_code": "GB"}})
    writer.insert_network(netaddr.IPSet(["2001:db8:1::/48"]), {"country": {"iso_code": "de"}})
    writer.insert_network(netaddr.IPSet(["203.0.113.0/24"]),
                          {"registered_country": {"iso_code": "NL"}})  # anycast: no country
    path = tmp_path_factory.mktemp("geoip") / "tiny.mmdb"
    writer.to_db_file(str(path))
    return path


@pytest.mark.parametrize(("ip", "country"), [
    ("81.2.69.160", "GB"),
    ("2001:db8:1::42", "DE"),
    ("203.0.113.9", "NL"),
    ("192.0.2.1", ""),  # not in the database
    ("testclient", ""),  # not an IP (Starlette's test peer)
    ("", ""),
])
def test_country_lookup(mmdb: pathlib.Path, ip: str, country: str) -> None:
    assert open_country_lookup(mmdb)(ip) == country


def test_a_missing_database_fails_at_start(tmp_path: pathlib.Path) -> None:
    with pytest.raises(GeoIpError, match="cannot read"):
        open_country_lookup(tmp_path / "nope.mmdb")
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"not a maxmind database")
    with pytest.raises(GeoIpError, match="cannot read"):
        open_country_lookup(garbage)


def test_an_odd_record_gives_no_country() -> None:
    class Reader:
        def get(self, ip: str) -> object:
            return {"1": [1, 2], "3": "x"} if ip == "1.1.1.1" else {"country": {"iso_code": 7}}

    assert CountryLookup(Reader())("1.1.1.1") == "" and CountryLookup(Reader())("2.2.2.2") == ""


class Published:
    """A Transport stand-in that keeps what ingest publishes (only publish is used)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def publish(self, key: bytes, value: bytes) -> None:
        self.messages.append(value)


def test_the_ingest_route_fills_the_country_from_the_configured_database(
        mmdb: pathlib.Path) -> None:
    transport = Published()
    routes = ingest_routes(
        transport,  # type: ignore[arg-type]
        {"example.com"}, max_body_bytes=8192, rate_limit_per_minute=0, trusted_proxies=(),
        bot_filter=True, salts=lambda ms: b"k" * 32, stats=IngestStats(), geoip_db=mmdb)
    app = Starlette(routes=routes)

    async def post_from(ip: str) -> httpx.Response:
        asgi = httpx.ASGITransport(app=app, client=(ip, 50000))
        async with httpx.AsyncClient(transport=asgi, base_url="http://ingest") as client:
            return await client.post("/api/event", content=orjson.dumps(pageview(new_sid())),
                                     headers={"user-agent": FIREFOX})

    for ip in ("81.2.69.160", "192.0.2.1"):
        assert asyncio.run(post_from(ip)).status_code == 202
    assert [decode_event(m).country for m in transport.messages] == ["GB", ""]
    assert all(b"81.2.69.160" not in m for m in transport.messages)
