"""The foundation's promise, through HTTP in one process, on chDB and on a ClickHouse server
(``CLICKPORT_STORE=clickhouse``: the embedded queue with a server): a pageview and two
outbound clicks (www.stripe.com and stripe.com) for one session make the outbound report
show stripe.com with 2 clicks and 1 unique click, and the session has_clicked, not bounced."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import STORES, click, new_sid, pageview, store_settings
from starlette.testclient import TestClient

from services.core.settings import Settings
from services.embedded.app import DEMO_DOMAIN, build_embedded_app

UA = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
PAGE = "http://127.0.0.1/demo"


@pytest.fixture(params=STORES)
def client(request: pytest.FixtureRequest, data_dir: pathlib.Path) -> Iterator[TestClient]:
    settings = Settings.from_env({}, data_dir=data_dir, batch_max_seconds=0.1,
                                 **store_settings(request))
    with TestClient(build_embedded_app(settings)) as test_client:
        yield test_client


def post(client: TestClient, beacon: dict[str, Any]) -> Any:
    return client.post("/api/event", content=__import__("orjson").dumps(beacon),
                       headers={**UA, "content-type": "text/plain"})


def wait_for(check: Any, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_two_stripe_clicks_are_one_domain_two_clicks_one_unique(client: TestClient) -> None:
    parts = client.app.state.embedded  # type: ignore[attr-defined]
    sid = new_sid()
    assert post(client, pageview(sid, PAGE, DEMO_DOMAIN)).status_code == 202
    assert post(client, click(sid, "https://www.stripe.com/x", "Stripe", DEMO_DOMAIN,
                              PAGE)).status_code == 202
    assert post(client, click(sid, "https://stripe.com/y", "Stripe docs", DEMO_DOMAIN,
                              PAGE)).status_code == 202

    def session() -> list[dict[str, Any]]:
        return parts.store.query(
            "SELECT has_clicked, is_bounce, pageviews, events FROM sessions FINAL "
            "WHERE session_id = {s:String}", {"s": sid})

    assert wait_for(lambda: session() and session()[0]["events"] == 3)
    assert session() == [{"has_clicked": 1, "is_bounce": 0, "pageviews": 1, "events": 3}]

    response = client.get("/api/outbound-links?period=today", headers={"x-api-key":
                                                                        parts.demo_key})
    assert response.status_code == 200
    body = response.json()
    assert body["site"] == DEMO_DOMAIN
    [row] = body["results"]
    assert (row["domain"], row["clicks"], row["unique_clicks"]) == ("stripe.com", 2, 1)
    # the example is the latest click; both may share a millisecond, so either pair is right
    assert (row["example_url"], row["example_text"]) in {
        ("https://www.stripe.com/x", "Stripe"), ("https://stripe.com/y", "Stripe docs")}
    drill = client.get("/api/outbound-links?period=today&domain=www.stripe.com",
                       headers={"x-api-key": parts.demo_key}).json()["results"]
    assert sorted((r["url"], r["clicks"]) for r in drill) == [
        ("https://stripe.com/y", 1), ("https://www.stripe.com/x", 1)]


def test_bad_input_is_400_naming_the_field_and_oversize_is_413(client: TestClient) -> None:
    bad = post(client, {**pageview(new_sid(), PAGE, DEMO_DOMAIN), "sid": "x"})
    assert bad.status_code == 400 and bad.json()["field"] == "sid"
    assert post(client, {"t": "e", "d": DEMO_DOMAIN, "u": PAGE, "sid": new_sid(), "sd": 300,
                         "vt": 1}).json()["field"] == "sd"
    broken = client.post("/api/event", content=b"{not json", headers=UA)
    assert broken.status_code == 400 and "error" in broken.json()
    huge = client.post("/api/event", content=b"x" * 9000, headers=UA)
    assert huge.status_code == 413
    assert bad.headers["access-control-allow-origin"] == "*"


def test_unknown_sites_and_bots_are_dropped_with_2xx_and_counted(client: TestClient) -> None:
    parts = client.app.state.embedded  # type: ignore[attr-defined]
    assert post(client, pageview(new_sid(), "https://nope.com/", "nope.com")).json() == {
        "ok": True, "dropped": "unknown_site"}
    robot = client.post("/api/event", content=__import__("orjson").dumps(
        pageview(new_sid(), PAGE, DEMO_DOMAIN)), headers={"user-agent": "Googlebot/2.1"})
    assert robot.status_code == 202
    assert parts.ingest_stats.dropped == {"unknown_site": 1, "bot": 1}


def test_the_api_needs_a_key_for_the_right_site(client: TestClient) -> None:
    parts = client.app.state.embedded  # type: ignore[attr-defined]
    assert client.get("/api/outbound-links").status_code == 401
    assert client.get("/api/outbound-links", headers={"x-api-key": "ck_wrong"}).status_code == 401
    other = client.get("/api/outbound-links?site=other.com",
                       headers={"x-api-key": parts.demo_key})
    assert other.status_code == 403
    bad_period = client.get("/api/outbound-links?period=forever",
                            headers={"x-api-key": parts.demo_key})
    assert bad_period.status_code == 400 and "period" in bad_period.json()["error"]


def test_the_tracker_and_demo_page_are_served(client: TestClient) -> None:
    tracker = client.get("/js/clickport.js")
    assert tracker.status_code == 200 and "javascript" in tracker.headers["content-type"]
    demo = client.get("/demo").text
    assert 'data-domain="demo.localhost"' in demo and "/go/headphones?asin=" in demo
    assert "amazon.com/dp/" in demo and "https://www.stripe.com/x" in demo


def test_health_readiness_and_prometheus_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert post(client, pageview(new_sid(), PAGE, DEMO_DOMAIN)).status_code == 202
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = metrics.text.splitlines()
    assert "clickport_ingest_accepted_total 1.0" in lines
    assert any(line.startswith("clickport_sessionizer_consumer_lag ") for line in lines)
    assert any(line.startswith("clickport_sessionizer_last_insert_seconds ") for line in lines)
    # The event above is stored within the 0.1 s batch timer: its batch is then counted in the
    # freshness histogram (receive to stored, never negative).
    parts = client.app.state.embedded  # type: ignore[attr-defined]
    assert wait_for(lambda: parts.sessionizer.stats.events_written >= 1)
    lines = client.get("/metrics").text.splitlines()
    count = next(line for line in lines
                 if line.startswith("clickport_sessionizer_batch_delay_seconds_count "))
    assert float(count.split()[1]) >= 1
    assert 'clickport_sessionizer_batch_delay_seconds_bucket{le="+Inf"} ' + count.split()[1] \
        in lines
    assert parts.sessionizer.stats.last_batch_delay_seconds >= 0


def test_an_unknown_api_path_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "no such endpoint: /api/nope"}
    assert client.get("/nope").status_code == 404
