"""Per-IP rate limiting with trusted-proxy handling (PRODUCT.md I6).

Over the limit, a beacon is answered 202 ``{"ok": true, "dropped": "rate_limit"}``, counted,
and not published. The client IP comes from ``X-Forwarded-For`` only when the peer is a
trusted proxy, and then it is the right-most address that is not itself a trusted proxy: so
a client cannot escape the limit by sending X-Forwarded-For itself (straight to ingest, or
by prepending hops that a trusted proxy then appends to).

The exact cases run on the real ingest routes and the real disk queue with a fixed clock
(the limit is per wall-clock minute); one end-to-end case runs against ``clickport dev``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import pathlib
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from services.adapters.disk_queue import DiskQueueTransport
from services.ingest.app import IngestStats, ingest_routes

from .support import FIREFOX, SITE, DevProcess

pytestmark = pytest.mark.timeout(180)

LIMIT = 5
PROXY = "198.51.100.23"
PROXY_NET = "10.0.0.0/8"  # a second tier of proxies (e.g. a load balancer's network)
NOW_MS = 1_795_000_000_000  # a fixed clock: mid-minute
_sids = itertools.count()


class Ingest:
    def __init__(self, queue: DiskQueueTransport, **options: int) -> None:
        self.queue = queue
        self.stats = IngestStats()
        self.now_ms = NOW_MS
        self.app = Starlette(routes=ingest_routes(
            queue, {SITE}, max_body_bytes=8192, rate_limit_per_minute=LIMIT,
            trusted_proxies=(PROXY, PROXY_NET), bot_filter=True, salts=lambda ms: b"k" * 32,
            stats=self.stats, now_ms=lambda: self.now_ms, **options))

    def post(self, peer: str, forwarded_for: str | None = None) -> str:
        """'accepted' or the drop reason."""
        beacon = {"t": "p", "d": SITE, "u": "https://demo.localhost/",
                  "sid": f"ratelimit{next(_sids):08d}".ljust(22, "r")}
        headers = {"user-agent": FIREFOX}
        if forwarded_for is not None:
            headers["x-forwarded-for"] = forwarded_for

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(peer, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as c:
                return await c.post("/api/event", content=orjson.dumps(beacon), headers=headers)

        response = asyncio.run(send())
        assert response.status_code == 202, response.text
        body = response.json()
        return str(body.get("dropped", "accepted"))


@pytest.fixture
def ingest(tmp_path: pathlib.Path) -> Iterator[Ingest]:
    queue = DiskQueueTransport(tmp_path / "queue.sqlite3", 10_000)
    asyncio.run(queue.start())
    yield Ingest(queue)
    asyncio.run(queue.stop())


def test_over_the_limit_is_202_dropped_counted_and_not_published(ingest: Ingest) -> None:
    answers = [ingest.post("192.0.2.1") for _ in range(LIMIT + 3)]
    assert answers == ["accepted"] * LIMIT + ["rate_limit"] * 3
    assert ingest.stats.dropped == {"rate_limit": 3}
    assert ingest.stats.accepted == LIMIT == ingest.queue.pending()
    assert ingest.post("192.0.2.2") == "accepted"  # another client has its own budget
    ingest.now_ms += 60_000  # the next minute
    assert ingest.post("192.0.2.1") == "accepted"


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_escape(ingest: Ingest
                                                                        ) -> None:
    answers = [ingest.post("192.0.2.9", f"203.0.113.{i}") for i in range(LIMIT + 5)]
    assert answers == ["accepted"] * LIMIT + ["rate_limit"] * 5
    assert ingest.post("192.0.2.9") == "rate_limit"  # the same budget, with or without it


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(ingest: Ingest) -> None:
    for client in ("203.0.113.1", "203.0.113.2", "2001:db8::1"):
        answers = [ingest.post(PROXY, client) for _ in range(LIMIT + 1)]
        assert answers == ["accepted"] * LIMIT + ["rate_limit"], client
    assert ingest.stats.dropped == {"rate_limit": 3}


def test_hops_a_client_prepends_do_not_escape_the_limit(ingest: Ingest) -> None:
    """The trusted proxy appends the address it saw; whatever the client wrote before it
    is ignored, including addresses of trusted proxies and junk."""
    real = "203.0.113.50"
    spoofs = [f"198.18.0.{i}, {real}" for i in range(LIMIT + 3)]
    spoofs += [f"{PROXY}, {real}", f"not-an-ip, {real}", f"10.1.2.3, {real}"]
    answers = [ingest.post(PROXY, chain) for chain in spoofs]
    assert answers[:LIMIT] == ["accepted"] * LIMIT
    assert set(answers[LIMIT:]) == {"rate_limit"}


def test_a_second_proxy_tier_is_skipped_to_the_client(ingest: Ingest) -> None:
    answers = [ingest.post(PROXY, f"203.0.113.60, 10.9.9.{i}") for i in range(LIMIT + 2)]
    assert answers == ["accepted"] * LIMIT + ["rate_limit"] * 2


def test_a_forwarded_for_naming_only_trusted_proxies_counts_against_the_peer(
        ingest: Ingest) -> None:
    answers = [ingest.post(PROXY, "10.0.0.1, 10.0.0.2") for _ in range(LIMIT + 1)]
    assert answers == ["accepted"] * LIMIT + ["rate_limit"]
    assert ingest.post(PROXY) == "rate_limit"  # that was the proxy's own budget


def test_an_ipv6_client_rotating_through_its_64_shares_one_budget(ingest: Ingest) -> None:
    """One subscriber gets a whole /64: a new address per beacon must not be a new budget."""
    rotating = [ingest.post(f"2001:db8:7:8:{i:x}:{i * 7:x}::{i + 1:x}") for i in range(LIMIT + 4)]
    assert rotating == ["accepted"] * LIMIT + ["rate_limit"] * 4
    assert ingest.post("2001:db8:7:9::1") == "accepted"  # the next /64 is another client
    behind_proxy = [ingest.post(PROXY, f"2001:db8:aa:bb::{i + 1:x}") for i in range(LIMIT + 1)]
    assert behind_proxy == ["accepted"] * LIMIT + ["rate_limit"]


def test_an_ipv4_mapped_address_is_the_ipv4_client(ingest: Ingest) -> None:
    answers = [ingest.post("192.0.2.40"), ingest.post("::ffff:192.0.2.40"),
               ingest.post(PROXY, "::ffff:c000:228")]  # the same address, written as hex
    answers += [ingest.post("192.0.2.40") for _ in range(LIMIT)]
    assert answers == ["accepted"] * LIMIT + ["rate_limit"] * 3


def test_a_garbage_forwarded_for_from_a_trusted_proxy_is_not_a_key(ingest: Ingest) -> None:
    """A proxy that forwards what it was sent (or a chain that is not addresses) must not
    hand out a new budget per invented string: the proxy's own budget is used, and counted."""
    junk = [f"client-{i}" for i in range(LIMIT)] + ["203.0.113.7:443", "[2001:db8::1]", "",
                                                      "203.0.113.300", "203.0.113.8, x"]
    answers = [ingest.post(PROXY, hop) for hop in junk]
    assert answers == ["accepted"] * LIMIT + ["rate_limit"] * 5
    assert ingest.stats.forwarded_for_invalid == len(junk) - 1  # "" is no header at all
    assert ingest.post(PROXY) == "rate_limit"  # it was the proxy's budget
    assert ingest.post(PROXY, "203.0.113.9") == "accepted"  # a real hop is still believed


def test_the_table_never_exceeds_its_cap_and_new_clients_past_it_share_a_budget(
        tmp_path: pathlib.Path) -> None:
    cap = 40
    queue = DiskQueueTransport(tmp_path / "queue.sqlite3", 10_000)
    asyncio.run(queue.start())
    try:
        ingest = Ingest(queue, rate_limit_max_clients=cap)
        limiter = ingest.stats.rate_limiter
        assert limiter is not None
        sizes, answers = [], []
        for i in range(200):  # 200 addresses in one minute, one beacon each
            answers.append(ingest.post(f"198.18.{i // 250}.{i % 250 + 1}"))
            sizes.append(len(limiter))
        assert max(sizes) == cap
        assert answers[:cap] == ["accepted"] * cap
        assert answers[cap:] == ["accepted"] * LIMIT + ["rate_limit"] * (200 - cap - LIMIT)
        assert limiter.overflowed == 200 - cap
        assert ingest.post("198.18.0.1") == "accepted"  # a client in the table keeps its own
        ingest.now_ms += 60_000  # the next minute: a new table
        assert ingest.post("198.18.0.199") == "accepted" and len(limiter) == 1
    finally:
        asyncio.run(queue.stop())


def seconds_into_minute() -> float:
    now = dt.datetime.now(dt.UTC)
    return now.second + now.microsecond / 1e6


def test_a_dev_process_limits_per_client_and_counts_the_drops(tmp_path: pathlib.Path) -> None:
    # 127.0.0.1 is the address uvicorn trusts for X-Forwarded-For by default: only
    # CLICKPORT_TRUSTED_PROXIES may decide whose header counts, so it must be limited too.
    limit, proxy, direct, local = 8, "127.0.0.66", "127.0.0.88", "127.0.0.1"
    dev = DevProcess(tmp_path / "data", tmp_path, CLICKPORT_RATE_LIMIT_PER_MINUTE=str(limit),
                     CLICKPORT_TRUSTED_PROXIES=proxy).start()
    try:
        if seconds_into_minute() > 45:  # the limit is per wall-clock minute: start a fresh one
            time.sleep(61 - seconds_into_minute())
        clients = {peer: httpx.Client(transport=httpx.HTTPTransport(local_address=peer),
                                      base_url=dev.base, timeout=10)
                   for peer in (proxy, direct, local)}

        def post(peer: str, forwarded_for: str | None = None) -> str:
            headers = {"user-agent": FIREFOX}
            if forwarded_for:
                headers["x-forwarded-for"] = forwarded_for
            beacon = {"t": "p", "d": SITE, "u": "https://demo.localhost/",
                      "sid": f"dev-rate{next(_sids):08d}".ljust(22, "r")}
            response = clients[peer].post("/api/event", content=orjson.dumps(beacon),
                                          headers=headers)
            assert response.status_code == 202
            return str(response.json().get("dropped", "accepted"))

        spoofed = [post(direct, f"203.0.113.{i}") for i in range(limit + 4)]
        spoofed_locally = [post(local, f"198.51.100.{i}") for i in range(limit + 4)]
        behind_proxy = [post(proxy, f"203.0.113.{i}") for i in range(3)]
        readyz = dev.readyz()
        for client in clients.values():
            client.close()
    finally:
        dev.stop()
    assert spoofed == ["accepted"] * limit + ["rate_limit"] * 4
    assert spoofed_locally == ["accepted"] * limit + ["rate_limit"] * 4
    assert behind_proxy == ["accepted"] * 3  # those clients are not the spoofer
    assert readyz["ingest"]["dropped"] == {"rate_limit": 8}
    assert readyz["ingest"]["accepted"] == 2 * limit + 3
