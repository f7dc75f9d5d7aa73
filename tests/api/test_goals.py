"""A5/A8 goals: CRUD round trip on the versioned table (readable by the sessionizer's
loader), validation errors that name the field, and G5: a goal saved through the API
converts sessions on events processed after it is saved, and only those."""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers import click, new_sid, pageview
from starlette.applications import Starlette
from starlette.testclient import TestClient

from services.api.app import api_routes
from services.core import sites as site_rules
from services.core.goals import GOALS_QUERY, goal_from_row

from .dataset import GOALS_A, Loaded, wait_for


@pytest.fixture(scope="module")
def key_d(loaded: Loaded) -> str:
    """A site of its own, so these writes never change what other tests read."""
    _, key = site_rules.add_site(loaded.parts.store, "goals-crud.test")
    return key


def call(loaded: Loaded, method: str, path: str, key: str, body: Any = None) -> Any:
    return loaded.client.request(method, path, json=body, headers={"x-api-key": key})


def stored_goals(loaded: Loaded, site: str) -> dict[str, Any]:
    rows = loaded.parts.store.query(GOALS_QUERY)
    return {g.id: g for g in map(goal_from_row, rows) if g.site == site}


def test_goals_are_listed_in_creation_order(loaded: Loaded) -> None:
    body = loaded.get("/api/goals").json()
    assert [g["name"] for g in body["results"]] == [g["name"] for g in GOALS_A]
    first = body["results"][0]
    assert first == {
        "id": loaded.goal_ids["Amazon click"], "name": "Amazon click", "type": "click",
        "conditions": [{"field": "domain", "operator": "contains", "value": "amazon"}],
        "logic": "all", "is_conversion": True, "created_at": first["created_at"]}
    assert body["results"][2]["is_conversion"] is False
    assert loaded.get("/api/goals", loaded.key_b).json()["results"] == []


def test_create_update_delete_round_trip(loaded: Loaded, key_d: str) -> None:
    created = call(loaded, "POST", "/api/goals", key_d, {
        "name": "  Shop  ", "type": "click", "logic": "any", "conditions": [
            {"field": "asin", "operator": "is_not_empty"},
            {"field": "title", "operator": "starts_with", "value": "Buy"}]})
    assert created.status_code == 201, created.text
    goal = created.json()
    assert re.fullmatch(r"[0-9a-f]{32}", goal["id"])
    assert goal == {**goal, "name": "Shop", "logic": "any", "is_conversion": True,
                    "conditions": [{"field": "asin", "operator": "is_not_empty", "value": ""},
                                   {"field": "title", "operator": "starts_with",
                                    "value": "Buy"}]}
    assert [g["id"] for g in call(loaded, "GET", "/api/goals", key_d).json()["results"]] == [
        goal["id"]]
    loader_view = stored_goals(loaded, "goals-crud.test")[goal["id"]]
    assert (loader_view.name, loader_view.logic, len(loader_view.conditions)) == ("Shop", "any", 2)

    updated = call(loaded, "PUT", f"/api/goals/{goal['id']}", key_d, {
        "name": "Pricing", "type": "pageview", "is_conversion": False,
        "conditions": [{"field": "path", "operator": "ends_with", "value": "/pricing"}]})
    assert updated.status_code == 200, updated.text
    assert updated.json() == {
        "id": goal["id"], "name": "Pricing", "type": "pageview", "logic": "all",
        "is_conversion": False, "created_at": goal["created_at"],
        "conditions": [{"field": "path", "operator": "ends_with", "value": "/pricing"}]}
    assert call(loaded, "GET", "/api/goals", key_d).json()["results"] == [updated.json()]
    assert stored_goals(loaded, "goals-crud.test")[goal["id"]].type == "pageview"

    deleted = call(loaded, "DELETE", f"/api/goals/{goal['id']}", key_d)
    assert deleted.status_code == 200 and deleted.json() == {"id": goal["id"], "deleted": True}
    assert call(loaded, "GET", "/api/goals", key_d).json()["results"] == []
    assert goal["id"] not in stored_goals(loaded, "goals-crud.test")
    for method in ("PUT", "DELETE"):
        again = call(loaded, method, f"/api/goals/{goal['id']}", key_d,
                     {"name": "x", "type": "click"} if method == "PUT" else None)
        assert again.status_code == 404 and again.json()["field"] == "goal_id"


def test_metacharacters_in_a_goal_are_stored_as_text(loaded: Loaded, key_d: str) -> None:
    text = "'; DROP TABLE goals; -- {x:String} \\ \"q\" é"
    created = call(loaded, "POST", "/api/goals", key_d, {"name": text, "type": "click",
                   "conditions": [{"field": "url", "operator": "contains", "value": text}]})
    assert created.status_code == 201, created.text
    goal = created.json()
    assert goal["name"] == text and goal["conditions"][0]["value"] == text
    assert stored_goals(loaded, "goals-crud.test")[goal["id"]].conditions[0].value == text
    assert call(loaded, "DELETE", f"/api/goals/{goal['id']}", key_d).status_code == 200


def test_another_sites_goal_is_404_for_update_and_delete(loaded: Loaded) -> None:
    goal_id = loaded.goal_ids["Amazon click"]
    for method in ("PUT", "DELETE"):
        response = call(loaded, method, f"/api/goals/{goal_id}", loaded.key_b,
                        {"name": "stolen", "type": "click"})
        assert response.status_code == 404
    assert loaded.get("/api/goals").json()["results"][0]["name"] == "Amazon click"


CONDITION = {"field": "domain", "operator": "equals", "value": "a.com"}


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "click"}, "name"),
    ({"name": "", "type": "click"}, "name"),
    ({"name": "   ", "type": "click"}, "name"),
    ({"name": "n" * 101, "type": "click"}, "name"),
    ({"name": "a\nb", "type": "click"}, "name"),
    ({"name": 5, "type": "click"}, "name"),
    ({"name": "x"}, "type"),
    ({"name": "x", "type": "scroll"}, "type"),
    ({"name": "x", "type": "click", "logic": "xor"}, "logic"),
    ({"name": "x", "type": "click", "is_conversion": "yes"}, "is_conversion"),
    ({"name": "x", "type": "click", "id": "abc"}, "id"),
    ({"name": "x", "type": "click", "conditions": [CONDITION] * 21}, "conditions"),
    ({"name": "x", "type": "click", "conditions": {"field": "url"}}, "conditions"),
    ({"name": "x", "type": "click", "conditions": [{**CONDITION, "field": "path"}]},
     "conditions[0].field"),
    ({"name": "x", "type": "pageview", "conditions": [CONDITION]}, "conditions[0].field"),
    ({"name": "x", "type": "click", "conditions": [CONDITION, {**CONDITION, "operator": "like"}]},
     "conditions[1].operator"),
    ({"name": "x", "type": "click", "conditions": [{**CONDITION, "value": "v" * 501}]},
     "conditions[0].value"),
    ({"name": "x", "type": "click", "conditions": [{**CONDITION, "value": ""}]},
     "conditions[0].value"),
    ({"name": "x", "type": "click", "conditions": [{**CONDITION, "value": "a\tb"}]},
     "conditions[0].value"),
    ({"name": "x", "type": "click", "conditions": [{"operator": "equals", "value": "a"}]},
     "conditions[0].field"),
])
def test_invalid_goals_are_400_naming_the_field(loaded: Loaded, key_d: str, body: Any,
                                                field: str) -> None:
    response = call(loaded, "POST", "/api/goals", key_d, body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field and response.json()["error"]
    assert call(loaded, "GET", "/api/goals", key_d).json()["results"] == []


def test_a_body_that_is_not_a_goal_is_400_and_a_huge_one_413(loaded: Loaded, key_d: str) -> None:
    for body in (b"", b"{", b"[]", b"null", b"\xff\xfe"):
        response = loaded.client.post("/api/goals", content=body, headers={"x-api-key": key_d})
        assert response.status_code == 400 and "error" in response.json()
    huge = loaded.client.post("/api/goals", content=b" " * 20_000, headers={"x-api-key": key_d})
    assert huge.status_code == 413


def test_a_goal_saved_through_the_api_converts_later_events_only(loaded: Loaded) -> None:
    site = "goals-live.test"
    _, key = site_rules.add_site(loaded.parts.store, site)
    loaded.parts.known_sites.add(site)
    page = f"https://{site}/"
    before, after = new_sid(), new_sid()
    loaded.post_beacon(pageview(before, page, site), 7)
    loaded.post_beacon(click(before, "https://www.amazon.com/dp/B000000009", "Early", site,
                             page), 7)
    assert wait_for(lambda: loaded.stored_events_of(site) == 2)

    goal_id = loaded.create_goal({"name": "Amazon", "type": "click", "conditions": [
        {"field": "domain", "operator": "equals", "value": "AMAZON.COM"}]}, key)
    loaded.refresh_goals(site, 1)
    loaded.post_beacon(click(before, "https://amazon.com/dp/B000000009", "Late", site, page), 7)
    loaded.post_beacon(pageview(after, page, site), 8)
    loaded.post_beacon(click(after, "https://amazon.com/dp/B000000009", "Buy", site, page), 8)
    assert wait_for(lambda: loaded.stored_events_of(site) == 5)

    rows = {r["session_id"]: r for r in loaded.get(
        "/api/sessions", key, period="7d").json()["results"]}
    goal = {"id": goal_id, "name": "Amazon", "is_conversion": True}
    assert (rows[after]["has_converted"], rows[after]["goals"]) == (True, [goal])
    assert (rows[before]["has_converted"], rows[before]["goals"]) == (True, [goal])
    early_then_late = loaded.get(f"/api/sessions/{before}/timeline", key).json()["results"]
    assert [(e["kind"], e["detail"].get("text"), e["goals"]) for e in early_then_late] == [
        ("pageview", None, []), ("click", "Early", []), ("click", "Late", [goal])]
    kpis = loaded.get("/api/kpis", key, period="7d").json()["results"]
    assert (kpis["sessions"], kpis["conversions"], kpis["conversion_rate"]) == (2, 2, 100.0)


def test_every_goal_write_calls_the_goals_changed_hook(loaded: Loaded) -> None:
    """`api_routes(..., goals_changed=sessionizer.refresh_goals_soon)` makes a goal apply at
    once; here an API built on the same Store counts the calls."""
    calls: list[int] = []
    api = TestClient(Starlette(routes=api_routes(loaded.parts.store,
                                                 goals_changed=lambda: calls.append(1))))
    _, key = site_rules.add_site(loaded.parts.store, "goals-hook.test")
    headers = {"x-api-key": key}
    goal = api.post("/api/goals", json={"name": "g", "type": "pageview"}, headers=headers)
    assert goal.status_code == 201 and len(calls) == 1
    goal_id = goal.json()["id"]
    api.put(f"/api/goals/{goal_id}", json={"name": "h", "type": "pageview"}, headers=headers)
    api.delete(f"/api/goals/{goal_id}", headers=headers)
    assert len(calls) == 3
    api.post("/api/goals", json={"name": ""}, headers=headers)  # rejected: no write, no call
    assert len(calls) == 3
