"""A1/A7 contract for every endpoint: a key reads only its site (403 for another site, 404
for another site's session or goal), parameters are checked and bound (SQL metacharacters
are rejected or harmless, never a 5xx), every error is JSON, and the OpenAPI document lists
every path, parameter and response."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from .dataset import SITE_B, Loaded

METACHARACTERS = ["' OR 1=1 --", "\\", "{x:String}", ";DROP TABLE events", "%27", "1\\'",
                  "demo.localhost' --", "}", "{site:String}", "\u202e", "a" * 3000]
CONTROL = ["a\tb", "a\nb", "\x00", "\x7f", "\r\n"]
READS = {  # path -> query parameters it takes (besides site)
    "/api/outbound-links": ("period", "from", "to", "domain"),
    "/api/sessions": ("period", "from", "to", "limit", "cursor"),
    "/api/kpis": ("period", "from", "to"),
    "/api/goals": (),
}
GOAL = {"name": "g", "type": "click"}


def every_request(loaded: Loaded) -> list[tuple[str, str, Any]]:
    sid, goal = loaded.sids["A1"], loaded.goal_ids["Amazon click"]
    return [("GET", path, None) for path in READS] + [
        ("GET", f"/api/sessions/{sid}/timeline", None),
        ("POST", "/api/goals", GOAL),
        ("PUT", f"/api/goals/{goal}", GOAL),
        ("DELETE", f"/api/goals/{goal}", None),
    ]


def call(loaded: Loaded, method: str, path: str, body: Any = None, key: str | None = None,
         params: dict[str, str] | None = None) -> Any:
    headers = {} if key == "" else {"x-api-key": key or loaded.key_a}
    return loaded.client.request(method, path, params=params, json=body, headers=headers)


def test_every_endpoint_needs_a_key(loaded: Loaded) -> None:
    for method, path, body in every_request(loaded):
        for key in ("", "ck_not-a-key", "nope", "ck_' OR 1=1 --", "ck_{x:String}\\"):
            response = call(loaded, method, path, body, key)
            assert response.status_code == 401, (method, path)
            assert "error" in response.json()


def test_a_key_for_site_a_is_403_on_site_b_for_every_endpoint(loaded: Loaded) -> None:
    for method, path, body in every_request(loaded):
        for other in (SITE_B, "www.othersite.test", "unknown.example"):
            response = call(loaded, method, path, body, params={"site": other})
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]
    assert call(loaded, "GET", "/api/kpis", params={"site": "WWW.demo.localhost"}
                ).status_code == 200


def test_another_sites_session_and_goal_are_404(loaded: Loaded) -> None:
    b_session = loaded.sids["B1"]
    assert call(loaded, "GET", f"/api/sessions/{b_session}/timeline").status_code == 404
    b_goal = loaded.create_goal({"name": "B goal", "type": "pageview"}, loaded.key_b)
    try:
        assert call(loaded, "PUT", f"/api/goals/{b_goal}", GOAL).status_code == 404
        assert call(loaded, "DELETE", f"/api/goals/{b_goal}").status_code == 404
    finally:
        assert call(loaded, "DELETE", f"/api/goals/{b_goal}", key=loaded.key_b
                    ).status_code == 200


@pytest.mark.parametrize("value", METACHARACTERS + CONTROL)
def test_metacharacters_in_any_parameter_are_rejected_or_harmless(loaded: Loaded,
                                                                  value: str) -> None:
    events_before = loaded.stored_events()
    for path, names in READS.items():
        for name in ("site", *names):
            response = call(loaded, "GET", path, params={name: value})
            assert response.status_code < 500, (path, name, response.text)
            assert response.headers["content-type"] == "application/json"
            if response.status_code == 200:  # only a free-text filter may accept it
                assert (path, name) == ("/api/outbound-links", "domain")
                assert response.json()["results"] == []
            else:
                assert response.status_code in (400, 403) and response.json()["error"]
    for path in ("/api/sessions/{}/timeline", "/api/goals/{}"):
        method = "GET" if "sessions" in path else "DELETE"
        response = call(loaded, method, path.format(quote(value, safe="")))
        assert response.status_code in (400, 404, 405), (path, response.status_code)
    assert loaded.stored_events() == events_before
    assert len(loaded.get("/api/goals").json()["results"]) == 3


@pytest.mark.parametrize("value", CONTROL + ["\\"])
def test_control_characters_and_backslashes_are_400_naming_the_parameter(
        loaded: Loaded, value: str) -> None:
    response = call(loaded, "GET", "/api/outbound-links", params={"domain": value})
    assert response.status_code == 400 and response.json()["field"] == "domain"


@pytest.mark.parametrize(("params", "field"), [
    ({"period": "forever"}, None), ({"from": "2026-01-01"}, None),
    ({"from": "2026-02-30", "to": "2026-03-01"}, None),
    ({"from": "2020-01-01", "to": "2019-01-01"}, None),
    ({"from": "1990-01-01", "to": "2026-01-01"}, None),
    ({"perod": "7d"}, "perod"),
])
def test_bad_period_parameters_are_400(loaded: Loaded, params: dict[str, str],
                                       field: str | None) -> None:
    for path in ("/api/outbound-links", "/api/sessions", "/api/kpis"):
        response = call(loaded, "GET", path, params=params)
        assert response.status_code == 400, (path, params)
        assert response.json().get("field") == field


def test_a_repeated_parameter_is_400(loaded: Loaded) -> None:
    response = loaded.client.get("/api/kpis?period=7d&period=30d",
                                 headers={"x-api-key": loaded.key_a})
    assert response.status_code == 400 and response.json()["field"] == "period"


def test_a_wrong_method_is_a_json_405(loaded: Loaded) -> None:
    for method, path in [("POST", "/api/kpis"), ("PATCH", "/api/goals/abc"),
                         ("DELETE", "/api/sessions"), ("GET", "/api/goals/abc")]:
        response = loaded.client.request(method, path, headers={"x-api-key": loaded.key_a})
        assert response.status_code == 405 and "error" in response.json()
        assert response.headers["allow"]


def test_openapi_lists_every_endpoint_parameter_and_response(loaded: Loaded) -> None:
    response = loaded.client.get("/api/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    operations = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert operations == {
        ("/api/outbound-links", "get"), ("/api/sessions", "get"),
        ("/api/sessions/{session_id}/timeline", "get"), ("/api/kpis", "get"),
        ("/api/goals", "get"), ("/api/goals", "post"), ("/api/goals/{goal_id}", "put"),
        ("/api/goals/{goal_id}", "delete")}
    params = {path: {p["name"] for p in item[next(iter(item))]["parameters"]}
              for path, item in doc["paths"].items()}
    assert params["/api/outbound-links"] == {"site", "period", "from", "to", "domain"}
    assert params["/api/sessions"] == {"site", "period", "from", "to", "limit", "cursor"}
    assert params["/api/kpis"] == {"site", "period", "from", "to"}
    assert params["/api/sessions/{session_id}/timeline"] == {"site", "session_id"}
    assert params["/api/goals/{goal_id}"] == {"site", "goal_id"}
    schemas = doc["components"]["schemas"]
    assert set(schemas["Kpis"]["properties"]) == {
        "visitors", "sessions", "pageviews", "views_per_visit", "bounce_rate", "conversions",
        "conversion_rate", "avg_duration", "avg_scroll"}
    assert set(schemas["GoalInput"]["properties"]) == {
        "name", "type", "conditions", "logic", "is_conversion"}

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    for item in doc["paths"].values():
        for operation in item.values():
            assert {"200", "201"} & set(operation["responses"]) and "400" in operation[
                "responses"]
