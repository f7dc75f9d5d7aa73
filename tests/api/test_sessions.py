"""A3 sessions: newest first with keyset (cursor) paging, and each session's timeline in
order with kind, detail and the goals an event converted."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from .dataset import A, Loaded

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
A_LABELS = ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8"]


def sessions(loaded: Loaded, key: str | None = None, **params: str) -> dict[str, Any]:
    response = loaded.get("/api/sessions", key, period="7d", **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def labels(loaded: Loaded, rows: list[dict[str, Any]]) -> list[str]:
    by_sid = {sid: label for label, sid in loaded.sids.items()}
    return [by_sid[row["session_id"]] for row in rows]


def by_label(loaded: Loaded) -> dict[str, dict[str, Any]]:
    rows = sessions(loaded)["results"]
    return dict(zip(labels(loaded, rows), rows, strict=True))


def test_sessions_are_newest_first_and_only_the_keys_site(loaded: Loaded) -> None:
    body = sessions(loaded)
    assert labels(loaded, body["results"]) == A_LABELS[::-1]
    assert body["next_cursor"] is None and body["site"] == "demo.localhost"
    assert labels(loaded, sessions(loaded, loaded.key_b)["results"]) == ["B2", "B1"]


def test_session_columns(loaded: Loaded) -> None:
    rows = by_label(loaded)
    a2 = rows["A2"]
    assert ISO_UTC.match(a2["started_at"])
    assert {k: a2[k] for k in ("entry_page", "exit_page", "pageviews", "duration", "source",
                               "has_clicked", "has_converted", "is_bounce", "goals")} == {
        "entry_page": "/", "exit_page": "/pricing", "pageviews": 2, "duration": 20,
        "source": "direct", "has_clicked": False, "has_converted": False, "is_bounce": False,
        "goals": []}
    assert rows["A7"]["source"] == "Google" and rows["A7"]["is_bounce"] is False
    assert (rows["A3"]["is_bounce"], rows["A3"]["duration"]) == (True, 3)
    assert (rows["A1"]["has_clicked"], rows["A1"]["is_bounce"]) == (True, False)
    amazon = {"id": loaded.goal_ids["Amazon click"], "name": "Amazon click",
              "is_conversion": True}
    assert (rows["A4"]["has_converted"], rows["A4"]["goals"]) == (True, [amazon])
    assert (rows["A8"]["has_converted"], rows["A8"]["goals"]) == (True, [amazon])
    signup = {"id": loaded.goal_ids["Signup"], "name": "Signup", "is_conversion": True}
    assert (rows["A6"]["has_converted"], rows["A6"]["is_bounce"], rows["A6"]["goals"]) == (
        True, True, [signup])
    assert set(a2) == {"session_id", "started_at", "entry_page", "exit_page", "pageviews",
                       "duration", "country", "device", "browser", "os", "source",
                       "has_clicked", "has_converted", "is_bounce", "goals"}


def test_device_columns_are_the_stored_ones(loaded: Loaded) -> None:
    stored = loaded.parts.store.query(
        "SELECT session_id, country, device, browser, os FROM sessions FINAL "
        "WHERE site_id = 'demo.localhost'")
    for row in stored:
        api_row = next(r for r in sessions(loaded)["results"] if r["session_id"] == row[
            "session_id"])
        assert {k: api_row[k] for k in ("country", "device", "browser", "os")} == {
            k: row[k] for k in ("country", "device", "browser", "os")}


def test_cursor_paging_walks_every_session_once_in_order(loaded: Loaded) -> None:
    seen: list[str] = []
    sizes = []
    cursor: str | None = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = sessions(loaded, **params)
        sizes.append(len(page["results"]))
        seen += labels(loaded, page["results"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [3, 3, 2]
    assert seen == A_LABELS[::-1]


def test_limit_of_exactly_the_row_count_has_no_next_page(loaded: Loaded) -> None:
    page = sessions(loaded, limit="8")
    assert len(page["results"]) == 8 and page["next_cursor"] is None
    assert len(sessions(loaded, limit="200")["results"]) == 8


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5", "", "9999999"])
def test_limit_out_of_range_is_400(loaded: Loaded, limit: str) -> None:
    response = loaded.get("/api/sessions", limit=limit)
    assert response.status_code == 400 and response.json()["field"] == "limit"


@pytest.mark.parametrize("cursor", [
    "zzz", "!!!!", base64.urlsafe_b64encode(b"12.short").decode(),
    base64.urlsafe_b64encode(b"abc.AAAAAAAAAAAAAAAAAAAA").decode(),
    base64.urlsafe_b64encode(b"1' OR 1=1 --.AAAAAAAAAAAAAAAAAAAA").decode(), "x" * 500])
def test_a_cursor_not_from_the_api_is_400(loaded: Loaded, cursor: str) -> None:
    response = loaded.get("/api/sessions", cursor=cursor)
    assert response.status_code == 400 and response.json()["field"] == "cursor"


def timeline(loaded: Loaded, label: str) -> dict[str, Any]:
    response = loaded.get(f"/api/sessions/{loaded.sids[label]}/timeline")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_timeline_lists_events_in_order_with_click_detail(loaded: Loaded) -> None:
    body = timeline(loaded, "A5")
    events = body["results"]
    assert [e["kind"] for e in events] == ["pageview", "click", "click"]
    assert events[0]["detail"] == {"path": "/review", "url": f"{A}/review"}
    assert events[1]["detail"] == {
        "url": f"{A}/go/headphones?asin=B0000000X2", "text": "Headphones",
        "asin": "B0000000X2", "kind": "primary", "domain": "demo.localhost", "page": "/review"}
    assert events[2]["detail"]["url"] == "https://stripe.com/z"
    times = [e["time"] for e in events]
    assert all(ISO_UTC.match(t) for t in times) and times == sorted(times)
    assert body["session"]["session_id"] == loaded.sids["A5"] and body["truncated"] is False


def test_timeline_shows_the_conversion_on_the_event_that_converted(loaded: Loaded) -> None:
    events = timeline(loaded, "A4")["results"]
    assert [(e["kind"], e["goals"]) for e in events] == [
        ("pageview", []),
        ("click", [{"id": loaded.goal_ids["Amazon click"], "name": "Amazon click",
                    "is_conversion": True}])]
    assert events[1]["detail"]["asin"] == "B000000001"


def test_timeline_shows_engagement_and_custom_detail(loaded: Loaded) -> None:
    a2 = timeline(loaded, "A2")["results"]
    assert [e["kind"] for e in a2] == ["pageview", "pageview", "engagement"]
    # "Pricing view" is completed and shown, marked as not a conversion
    assert a2[1]["goals"] == [{"id": loaded.goal_ids["Pricing view"], "name": "Pricing view",
                               "is_conversion": False}]
    assert a2[2]["detail"] == {"path": "/pricing", "scroll": 60, "visible_ms": 20_000}
    a6 = timeline(loaded, "A6")["results"]
    assert a6[1]["kind"] == "custom"
    assert a6[1]["detail"] == {"name": "signup", "props": {"plan": "pro"}, "path": "/"}
    assert a6[1]["goals"] == [{"id": loaded.goal_ids["Signup"], "name": "Signup",
                               "is_conversion": True}]


def test_timeline_of_another_sites_session_is_404(loaded: Loaded) -> None:
    response = loaded.get(f"/api/sessions/{loaded.sids['B1']}/timeline")
    assert response.status_code == 404 and "error" in response.json()
    mine = loaded.get(f"/api/sessions/{loaded.sids['B1']}/timeline", loaded.key_b)
    assert mine.status_code == 200 and len(mine.json()["results"]) == 2
    unknown = loaded.get("/api/sessions/" + "Q" * 22 + "/timeline")
    assert unknown.status_code == 404


@pytest.mark.parametrize("sid", ["short", "x" * 65, "bad.chars.in.this.one", "%27%20OR%201%3D1"])
def test_a_malformed_session_id_is_400(loaded: Loaded, sid: str) -> None:
    response = loaded.get(f"/api/sessions/{sid}/timeline")
    assert response.status_code == 400 and response.json()["field"] == "session_id"
