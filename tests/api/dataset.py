"""The API tests' data set and the handle they read it through (`Loaded`).

Site A is the demo site with three goals created through the API before any beacon; site B
is a second site whose data must never show through site A's key. Every beacon arrives
"now", so the data set sits in today (UTC). Each visitor is a distinct User-Agent: same
client IP, so the daily visitor id differs only by UA.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from helpers import click, engagement, pageview
from starlette.testclient import TestClient

from services.embedded.app import DEMO_DOMAIN

SITE_A = DEMO_DOMAIN
SITE_B = "othersite.test"
A = "https://demo.localhost"
B = "https://othersite.test"
GOALS_A = [
    {"name": "Amazon click", "type": "click",
     "conditions": [{"field": "domain", "operator": "contains", "value": "amazon"}]},
    {"name": "Signup", "type": "custom",
     "conditions": [{"field": "name", "operator": "equals", "value": "SIGNUP"}]},
    {"name": "Pricing view", "type": "pageview", "is_conversion": False,
     "conditions": [{"field": "path", "operator": "equals", "value": "/pricing"}]},
]


def user_agent(visitor: int) -> str:
    return f"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/{120 + visitor}.0"


def custom(sid: str, name: str, props: dict[str, str], domain: str, url: str) -> dict[str, Any]:
    return {"t": "x", "d": domain, "u": url, "sid": sid, "n": name, "p": props}


def dataset() -> list[tuple[str, str, int, Callable[[str], list[dict[str, Any]]]]]:
    """(label, site, visitor, beacons for a sid), posted in this order, one session each."""
    a, b = SITE_A, SITE_B
    return [
        ("A1", a, 1, lambda s: [
            pageview(s, f"{A}/", a),
            click(s, "https://www.stripe.com/x", "Stripe", a, f"{A}/"),
            click(s, "https://stripe.com/y", "Stripe docs", a, f"{A}/")]),
        ("A2", a, 1, lambda s: [
            pageview(s, f"{A}/", a), pageview(s, f"{A}/pricing", a),
            engagement(s, 60, 20_000, a, f"{A}/pricing")]),
        ("A3", a, 2, lambda s: [pageview(s, f"{A}/", a), engagement(s, 10, 3_000, a, f"{A}/")]),
        ("A4", a, 2, lambda s: [
            pageview(s, f"{A}/review", a),
            click(s, "https://www.amazon.com/dp/B000000001", "Buy", a, f"{A}/review")]),
        ("A5", a, 3, lambda s: [
            pageview(s, f"{A}/review", a),
            click(s, f"{A}/go/headphones?asin=B0000000X2", "Headphones", a, f"{A}/review",
                  ca="B0000000X2"),
            click(s, "https://stripe.com/z", "Pay", a, f"{A}/review")]),
        ("A6", a, 3, lambda s: [
            pageview(s, f"{A}/", a), custom(s, "signup", {"plan": "pro"}, a, f"{A}/")]),
        ("A7", a, 4, lambda s: [
            pageview(s, f"{A}/", a, r="https://www.google.com/"),
            engagement(s, 30, 5_000, a, f"{A}/")]),
        ("A8", a, 4, lambda s: [
            pageview(s, f"{A}/", a),
            click(s, "https://amazon.com/dp/B000000001", "Buy again", a, f"{A}/")]),
        ("B1", b, 5, lambda s: [
            pageview(s, f"{B}/", b), click(s, "https://stripe.com/b", "Stripe B", b, f"{B}/")]),
        ("B2", b, 5, lambda s: [
            pageview(s, f"{B}/", b),
            click(s, "https://www.amazon.com/dp/B000000001", "B buy", b, f"{B}/")]),
    ]


@dataclass
class Loaded:
    client: TestClient
    key_a: str
    key_b: str
    sids: dict[str, str] = field(default_factory=dict)
    goal_ids: dict[str, str] = field(default_factory=dict)

    @property
    def parts(self) -> Any:
        return self.client.app.state.embedded  # type: ignore[attr-defined]

    def get(self, path: str, key: str | None = None, **params: str) -> Any:
        return self.client.get(path, params=params,
                               headers={"x-api-key": self.key_a if key is None else key})

    def post_beacon(self, beacon: dict[str, Any], visitor: int) -> None:
        response = self.client.post("/api/event", content=orjson.dumps(beacon), headers={
            "user-agent": user_agent(visitor), "content-type": "text/plain"})
        assert response.json() == {"ok": True}, response.text

    def create_goal(self, goal: dict[str, Any], key: str | None = None) -> str:
        response = self.client.post("/api/goals", json=goal,
                                    headers={"x-api-key": key or self.key_a})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def refresh_goals(self, site: str, count: int) -> None:
        """Make the sessionizer reload goals now instead of within 5 s."""
        sessionizer = self.parts.sessionizer
        sessionizer.refresh_goals_soon()
        assert wait_for(lambda: sum(g.site == site for g in sessionizer.goals) == count)

    def stored_events(self) -> int:
        rows = self.parts.store.query("SELECT count() AS n FROM events FINAL")
        return int(rows[0]["n"])

    def stored_events_of(self, site: str) -> int:
        """Events of the site that the sessionizer has written, counted on sessions so
        that both tables are written."""
        rows = self.parts.store.query(
            "SELECT sum(events) AS n FROM sessions FINAL WHERE site_id = {s:String}", {"s": site})
        return int(rows[0]["n"] or 0)

    def wait_until_stored(self, events: int) -> None:
        def done() -> bool:
            counted = self.parts.store.query(
                "SELECT (SELECT count() FROM events FINAL) AS e, "
                "(SELECT sum(events) FROM sessions FINAL) AS s")[0]
            return int(counted["e"]) == events and int(counted["s"]) == events
        assert wait_for(done, 20.0), "the sessionizer did not write the data set in time"


def wait_for(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)
