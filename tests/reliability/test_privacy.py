"""The client IP is never stored or logged (PRODUCT.md I3), and secrets stay out of logs.

Beacons come from distinctive addresses, through a trusted proxy (``X-Forwarded-For``, IPv4
and IPv6, with a spoofed hop on the left) and straight from the peer, along with bad input,
oversize bodies, unknown sites, bots and API calls, so every logging path runs. Then every
table of the Store (read back in full as TSV), the files of the data directory, ``/readyz``,
``/metrics``, the API's answers and every log line are searched for each address as text
(and, in the disk queue's uncompressed files, as packed bytes). The visitor ids prove the
forwarded addresses were used: different clients get different ids.

In this process the logs are caplog at DEBUG for every logger; for a real ``clickport dev``
process they are its stdout and stderr.
"""

from __future__ import annotations

import ipaddress
import logging
import pathlib
from collections.abc import Iterable
from typing import Any

import httpx
import orjson
import pytest

from .support import FIREFOX, SITE, DevProcess, EmbeddedRun, dump_tables, stopped_store, wait_for

pytestmark = pytest.mark.timeout(300)

PEPPER = "pepper-0f4a9c-never-in-a-log"
PROXY = "198.51.100.23"  # the trusted reverse proxy (the peer of every request here)
CLIENT_V4 = "203.0.113.77"
CLIENT_V6 = "2001:db8:ab::77"
CLIENT_BEHIND_SPOOF = "203.0.113.78"
SPOOFED_HOP = "10.66.77.88"
OTHER_HEADERS_IP = "203.0.113.79"


def forms(ip: str) -> list[str]:
    """The ways an address can be written as text."""
    address = ipaddress.ip_address(ip)
    found = {ip, str(address), address.exploded}
    if address.version == 6:
        found.add(address.exploded.replace(":0000", ":0"))
    return sorted(found)


def packed(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def leaks(ips: Iterable[str], texts: dict[str, str]) -> list[tuple[str, str]]:
    return [(ip_text, where) for ip in ips for ip_text in forms(ip)
            for where, text in texts.items() if ip_text in text]


def data_files(data_dir: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes()
            for p in sorted(data_dir.rglob("*")) if p.is_file()}


def beacons(sid: str, domain: str = SITE) -> list[dict[str, Any]]:
    page = f"https://{domain}/pricing?utm_source=mail"
    return [{"t": "p", "d": domain, "u": page, "sid": sid, "r": "https://www.google.com/"},
            {"t": "c", "d": domain, "u": page, "sid": sid, "cu": "https://stripe.com/pay",
             "ct": "Pay", "ck": "primary"},
            {"t": "e", "d": domain, "u": page, "sid": sid, "sd": 50, "vt": 9000},
            {"t": "x", "d": domain, "u": page, "sid": sid, "n": "signup", "p": {"a": "b"}}]


def test_client_ips_are_nowhere_in_storage_files_answers_or_logs_in_process(
        tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger's records
    data_dir = tmp_path / "data"
    clients = {"v4": {"x-forwarded-for": CLIENT_V4},
               "v6": {"x-forwarded-for": CLIENT_V6},
               "spoofed": {"x-forwarded-for": f"{SPOOFED_HOP}, {CLIENT_BEHIND_SPOOF}"},
               "peer": {},
               "other headers": {"x-real-ip": OTHER_HEADERS_IP, "forwarded":
                                 f"for={OTHER_HEADERS_IP};proto=https",
                                 "x-forwarded-for": CLIENT_V4}}
    with EmbeddedRun(data_dir, peer=(PROXY, 40000), trusted_proxies=(PROXY,),
                     visitor_salt_secret=PEPPER, rate_limit_per_minute=1000) as run:
        posted = 0
        for name, headers in clients.items():
            sid = f"privacy-{name.replace(' ', '-')}".ljust(22, "p")
            for beacon in beacons(sid):
                assert run.post_json(beacon, **headers).json() == {"ok": True}
                posted += 1
        noise = [run.post(b"{", **{"x-forwarded-for": CLIENT_V4}),
                 run.post(b"x" * 9000, **{"x-forwarded-for": CLIENT_V4}),
                 run.post_json(beacons("n" * 22, "unknown.example")[0],
                               **{"x-forwarded-for": CLIENT_V4}),
                 run.client.post("/api/event", content=orjson.dumps(beacons("b" * 22)[0]),
                                 headers={"user-agent": "Googlebot/2.1",
                                          "x-forwarded-for": CLIENT_V4})]
        assert [r.status_code for r in noise] == [400, 413, 202, 202]
        assert run.wait_until_stored(posted)
        vids = {r["session_id"][8:]: r["visitor_id"] for r in run.store.query(
            "SELECT session_id, visitor_id FROM sessions FINAL")}
        assert len(set(vids.values())) == 4, vids  # v4 and "other headers" share CLIENT_V4
        key = {"x-api-key": run.key}
        answers = {path: run.client.get(path, headers=key).text for path in (
            "/readyz", "/metrics", "/api/sessions?period=all", "/api/kpis?period=all",
            "/api/outbound-links?period=all",
            "/api/sessions/privacy-v4pppppppppppp/timeline")}
        tables = dump_tables(run.store)
        salts = [r["salt"] for r in run.store.query("SELECT salt FROM visitor_salts")]
        keys = [run.key]
    logs = "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}"
                     for r in caplog.records)
    files = data_files(data_dir)
    ips = [CLIENT_V4, CLIENT_V6, CLIENT_BEHIND_SPOOF, SPOOFED_HOP, OTHER_HEADERS_IP, PROXY]

    texts = {**{f"table {t}": v for t, v in tables.items()}, **answers, "logs": logs,
             **{f"file {n}": b.decode("latin-1") for n, b in files.items()}}
    assert not leaks(ips, texts)
    queue_bytes = b"".join(b for n, b in files.items() if n.startswith("queue.sqlite3"))
    assert not [ip for ip in ips if packed(ip) in queue_bytes]
    assert len(tables) >= 6 and tables["events"].count("\n") == posted
    secrets = [PEPPER, *salts, *keys]
    assert not [s for s in secrets if s in logs or s in "".join(answers.values())]


def test_a_dev_process_keeps_client_ips_out_of_its_store_and_its_output(
        tmp_path: pathlib.Path) -> None:
    """Peers are distinctive loopback addresses: 127.0.0.66 is the trusted proxy, 127.0.0.77
    a direct client (untrusted: its X-Forwarded-For is ignored, and not stored either)."""
    proxy_peer, direct_peer, forwarded = "127.0.0.66", "127.0.0.77", "203.0.113.99"
    dev = DevProcess(tmp_path / "data", tmp_path, CLICKPORT_TRUSTED_PROXIES=proxy_peer,
                     CLICKPORT_VISITOR_SALT_SECRET=PEPPER,
                     CLICKPORT_RATE_LIMIT_PER_MINUTE="1000",
                     CLICKPORT_BATCH_MAX_SECONDS="0.1").start()
    try:
        via_proxy = httpx.Client(transport=httpx.HTTPTransport(local_address=proxy_peer),
                                 base_url=dev.base, timeout=10)
        direct = httpx.Client(transport=httpx.HTTPTransport(local_address=direct_peer),
                              base_url=dev.base, timeout=10)
        ua = {"user-agent": FIREFOX}
        posted = 0
        for client, headers, sid in (
                (via_proxy, {"x-forwarded-for": forwarded}, "dev-forwarded"),
                (direct, {"x-forwarded-for": "203.0.113.98"}, "dev-direct-spoof"),
                (direct, {}, "dev-direct")):
            for beacon in beacons(sid.ljust(22, "d")):
                response = client.post("/api/event", content=orjson.dumps(beacon),
                                       headers={**ua, **headers})
                assert response.json() == {"ok": True}, response.text
                posted += 1
        for client in (via_proxy, direct):
            assert client.post("/api/event", content=b"{", headers=ua).status_code == 400
            assert client.post("/api/event", content=b"x" * 9000,
                               headers=ua).status_code == 413
            assert client.get("/api/kpis", headers={"x-api-key": "ck_wrong"}
                              ).status_code == 401
        key = {"x-api-key": dev.key()}
        assert wait_for(lambda: httpx.get(dev.base + "/api/kpis?period=all", headers=key
                                          ).json()["results"]["pageviews"] == 3, 30)
        answers = {path: direct.get(path, headers=key).text for path in (
            "/readyz", "/metrics", "/api/sessions?period=all", "/api/outbound-links?period=all")}
        via_proxy.close()
        direct.close()
    finally:
        dev.stop()
    output = dev.logs()
    with stopped_store(dev.data_dir) as store:
        tables = dump_tables(store)
        vids = {r["session_id"]: r["visitor_id"] for r in store.query(
            "SELECT session_id, visitor_id FROM sessions FINAL")}
        salts = [r["salt"] for r in store.query("SELECT salt FROM visitor_salts")]
    files = data_files(dev.data_dir)
    texts = {**{f"table {t}": v for t, v in tables.items()}, **answers,
             "dev stdout+stderr": output,
             **{f"file {n}": b.decode("latin-1") for n, b in files.items()}}
    ips = [forwarded, direct_peer, proxy_peer, "203.0.113.98"]
    assert not leaks(ips, texts)
    assert tables["events"].count("\n") == posted
    # the spoofed header from the untrusted peer was ignored: same id as its plain requests
    spoofed, plain = vids["dev-direct-spoof".ljust(22, "d")], vids["dev-direct".ljust(22, "d")]
    assert spoofed == plain != vids["dev-forwarded".ljust(22, "d")]
    assert PEPPER not in output and not [s for s in salts if s in output]
    admin_token = orjson.loads((dev.data_dir / "runtime.json").read_bytes())["admin_token"]
    assert admin_token not in output
    # the demo key is printed once, on purpose, in the start banner (README "Demo site")
    banner = ("  dashboard:", "  API key:", "  try:")
    assert all(line.startswith(banner) for line in output.splitlines() if dev.key() in line)
