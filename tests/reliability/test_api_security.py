"""Security of the query API and of the ingest edge (PRODUCT.md A1, A7, I1), on the real
embedded app with two sites whose data carry distinctive markers:

- a key reads and writes only its own site, on every operation the OpenAPI document lists
  (the list is read from the document, so a new endpoint fails here until it is covered):
  another site's session or goal is 404, ``site=<other>`` is 403, nothing of the other site
  appears in any answer, and the other site's rows are unchanged afterwards;
- a revoked key is 401 everywhere; keys are stored only as SHA-256, looked up by that hash
  (the raw key never reaches the Store) and compared with ``hmac.compare_digest``;
- SQL and template metacharacters in every parameter (query and path), in the key header,
  in goal bodies and in beacons are inert: never a 5xx, stored and shown as literal text,
  and no table changes that should not;
- goal bodies that are not UTF-8 are a 400, not a 5xx;
- CORS is open only where beacons and the tracker are served.
"""

from __future__ import annotations

import hashlib
import inspect
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from services.api import openapi
from services.core import sites as site_rules

from .support import SITE, EmbeddedRun, dump_tables

pytestmark = pytest.mark.timeout(300)

OTHER = "othersite.test"
GOAL = {"name": "probe goal", "type": "click",
        "conditions": [{"field": "domain", "operator": "contains", "value": "probe"}]}
METACHARACTERS = [
    "' OR 1=1 --", "'; DROP TABLE events; --", "\" OR \"\"=\"", "1; SELECT * FROM api_keys",
    "' UNION SELECT key_hash, site_id FROM api_keys --", "{site:String}", "{x:String}", "}",
    "{", "`", "$1", "%", "_", "%27", "%00", "\\", "\\'", "1\\'", "demo.localhost' --",
    "*", "?", "#", "/../..", "\u202e", "\ufeff", "é", "\U0001f600",
    "a" * 3000,
]


class Site:
    """One site's key, session ids, goal ids and the strings only its data contains."""

    def __init__(self, domain: str, key: str, marker: str) -> None:
        self.domain, self.key, self.marker = domain, key, marker
        self.sids: list[str] = []
        self.goal_ids: list[str] = []

    @property
    def markers(self) -> list[str]:
        return [self.marker, self.domain, *self.sids, *self.goal_ids]


def load_site(run: EmbeddedRun, site: Site) -> int:
    """Two sessions (pageview, click, engagement, custom) and a goal, all marked."""
    response = run.client.post("/api/goals", headers={"x-api-key": site.key}, json={
        "name": f"{site.marker} goal", "type": "click",
        "conditions": [{"field": "domain", "operator": "contains", "value": site.marker}]})
    assert response.status_code == 201, response.text
    site.goal_ids.append(response.json()["id"])
    page = f"https://{site.domain}/{site.marker}-page"
    posted = 0
    for n in range(2):
        sid = f"{site.marker}{n}".ljust(22, "s")
        site.sids.append(sid)
        for beacon in [
            {"t": "p", "r": f"https://{site.marker}-ref.example/"},
            {"t": "c", "cu": f"https://{site.marker}-dest.example/x", "ct": f"{site.marker} buy",
             "ck": "primary"},
            {"t": "e", "sd": 40, "vt": 20_000},
            {"t": "x", "n": f"{site.marker}-signup", "p": {"plan": site.marker}},
        ]:
            reply = run.post_json({**beacon, "d": site.domain, "u": page, "sid": sid})
            assert reply.json() == {"ok": True}, reply.text
            posted += 1
    return posted


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedRun, Site, Site]]:
    with EmbeddedRun(pathlib.Path(tmp_path_factory.mktemp("security"))) as run:
        _, other_key = site_rules.add_site(run.store, OTHER)
        run.parts.known_sites.add(OTHER)
        a, b = Site(SITE, run.key, "alphamark"), Site(OTHER, other_key, "bravomark")
        posted = load_site(run, a) + load_site(run, b)
        assert run.wait_until_stored(posted)
        yield run, a, b


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation)
            for path, item in openapi.document()["paths"].items()
            for method, operation in item.items()]


def call(run: EmbeddedRun, method: str, template: str, key: str | None, *,
         session_id: str = "", goal_id: str = "", params: Mapping[str, str] | None = None,
         body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
    path = template.replace("{session_id}", quote(session_id, safe="")).replace(
        "{goal_id}", quote(goal_id, safe=""))
    sent = dict(headers or {})
    if key is not None:
        sent["x-api-key"] = key
    if body is None and method in ("POST", "PUT"):
        body = GOAL
    return run.client.request(method, path, params=params, headers=sent,
                              content=None if body is None else orjson.dumps(body))


def fingerprint(run: EmbeddedRun, domain: str) -> dict[str, Any]:
    """What a site's rows are: any write to them changes this."""
    query = run.store.query
    s = {"s": domain}
    return {
        "events": query("SELECT count() AS n, groupBitXor(cityHash64(toString(event_id), url, "
                        "meta_values)) AS h FROM events FINAL WHERE site_id = {s:String}", s),
        "sessions": query("SELECT count() AS n, groupBitXor(cityHash64(session_id, version)) "
                          "AS h FROM sessions FINAL WHERE site_id = {s:String}", s),
        "goals": query("SELECT count() AS n, groupBitXor(cityHash64(goal_id, version, "
                       "deleted)) AS h FROM goals FINAL WHERE site_id = {s:String}", s),
        "keys": query("SELECT count() AS n, groupBitXor(cityHash64(key_hash, version)) AS h "
                      "FROM api_keys FINAL WHERE site_id = {s:String}", s),
        "sites": query("SELECT count() AS n, max(version) AS v FROM sites FINAL "
                       "WHERE domain = {s:String}", s),
    }


def scratch_goal(run: EmbeddedRun, site: Site) -> str:
    response = call(run, "POST", "/api/goals", site.key, body={**GOAL, "name": "scratch"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_no_markers(response: Any, markers: list[str], what: object) -> None:
    leaked = [m for m in markers if m in response.text]
    assert not leaked, (what, leaked, response.text[:300])


def test_the_openapi_document_lists_the_operations_these_tests_cover() -> None:
    assert {(m, p) for m, p, _ in operations()} == {
        ("GET", "/api/outbound-links"), ("GET", "/api/sessions"),
        ("GET", "/api/sessions/{session_id}/timeline"), ("GET", "/api/kpis"),
        ("GET", "/api/goals"), ("POST", "/api/goals"), ("PUT", "/api/goals/{goal_id}"),
        ("DELETE", "/api/goals/{goal_id}")}


@pytest.mark.parametrize("direction", ["a reads b", "b reads a"])
def test_a_key_never_reads_or_writes_another_site_on_any_operation(
        world: tuple[EmbeddedRun, Site, Site], direction: str) -> None:
    run, a, b = world
    me, other = (a, b) if direction == "a reads b" else (b, a)
    before = fingerprint(run, other.domain)
    other_goals = call(run, "GET", "/api/goals", other.key).json()
    for method, path, _ in operations():
        # the other site's session or goal through my key: not found, and nothing leaks
        if "{" in path:
            response = call(run, method, path, me.key, session_id=other.sids[0],
                            goal_id=other.goal_ids[0])
            assert response.status_code == 404, (method, path, response.text)
            assert_no_markers(response, other.markers, (method, path))
        # naming the other site: 403 before anything is looked up or written
        for asked in (other.domain, f"www.{other.domain}", other.domain.upper()):
            response = call(run, method, path, me.key, session_id=me.sids[0],
                            goal_id=me.goal_ids[0], params={"site": asked})
            assert response.status_code == 403, (method, path, asked, response.text)
            assert_no_markers(response, other.markers, (method, path))
        # my own data, with every period: only mine
        for period in ("today", "all"):
            params = {"period": period} if path in ("/api/outbound-links", "/api/sessions",
                                                    "/api/kpis") else {}
            goal_id = scratch_goal(run, me) if "goal_id" in path else ""
            response = call(run, method, path, me.key, session_id=me.sids[0], goal_id=goal_id,
                            params=params)
            assert response.status_code in (200, 201), (method, path, response.text)
            assert_no_markers(response, other.markers, (method, path))
    drill = call(run, "GET", "/api/outbound-links", me.key,
                 params={"period": "all", "domain": f"{other.marker}-dest.example"})
    assert drill.status_code == 200 and drill.json()["results"] == []
    assert fingerprint(run, other.domain) == before, "the other site's rows changed"
    assert call(run, "GET", "/api/goals", other.key).json() == other_goals
    mine = call(run, "GET", "/api/sessions", me.key, params={"period": "all"}).json()
    assert {row["session_id"] for row in mine["results"]} == set(me.sids)


def test_a_revoked_key_and_a_key_like_string_are_401_on_every_operation(
        world: tuple[EmbeddedRun, Site, Site]) -> None:
    run, a, _ = world
    revoked = site_rules.create_key(run.store, a.domain)  # never used, so never cached
    assert site_rules.revoke_key(run.store, revoked) == a.domain
    almost = a.key[:-1] + ("A" if a.key[-1] != "A" else "B")
    for method, path, _ in operations():
        for key in (revoked, almost, a.key.upper(), a.key + " ", "ck_", hash_of(a.key)):
            response = call(run, method, path, key, session_id=a.sids[0],
                            goal_id=a.goal_ids[0])
            assert response.status_code == 401, (method, path, key, response.text)
            assert response.json()["error"]


def hash_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class RecordingStore:
    """The real Store, with every statement and parameter it receives kept."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.seen: list[str] = []

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        self.seen.append(sql + repr(dict(params or {})))
        return self._store.query(sql, params)

    def insert(self, table: str, rows: Any, *, dedup_token: str = "") -> None:
        self.seen.append(table + repr(list(rows)) + dedup_token)
        self._store.insert(table, rows, dedup_token=dedup_token)


def test_keys_are_stored_hashed_looked_up_by_hash_and_compared_in_constant_time(
        world: tuple[EmbeddedRun, Site, Site], monkeypatch: pytest.MonkeyPatch) -> None:
    run, a, b = world
    recording = RecordingStore(run.store)
    fresh = site_rules.create_key(recording, b.domain)  # type: ignore[arg-type]
    compared: list[tuple[str, str]] = []
    real_compare = site_rules.hmac.compare_digest

    def spy(x: Any, y: Any) -> bool:
        compared.append((x, y))
        return real_compare(x, y)

    monkeypatch.setattr(site_rules.hmac, "compare_digest", spy)
    assert site_rules.site_for_key(recording, fresh) == b.domain  # type: ignore[arg-type]
    assert site_rules.site_for_key(recording, fresh[:-2] + "zz") is None  # type: ignore[arg-type]
    assert compared and compared[0] == (hash_of(fresh), hash_of(fresh))
    assert all(fresh not in text for text in recording.seen), "the raw key reached the Store"
    assert any(hash_of(fresh) in text for text in recording.seen)
    assert "compare_digest" in inspect.getsource(site_rules.site_for_key)

    tables = dump_tables(run.store)
    for key in (a.key, b.key, fresh):
        holding = [name for name, text in tables.items() if key in text]
        assert not holding, f"a raw API key is stored in {holding}"
        assert hash_of(key) in tables["api_keys"]
        assert key[len("ck_"):][:16] not in "".join(tables.values())


@pytest.mark.parametrize("value", METACHARACTERS)
def test_metacharacters_in_every_parameter_are_inert(world: tuple[EmbeddedRun, Site, Site],
                                                      value: str) -> None:
    run, a, b = world
    before = {d: fingerprint(run, d) for d in (a.domain, b.domain)}
    goals_before = call(run, "GET", "/api/goals", a.key).json()
    markers = [m for m in b.markers if m not in value]
    for method, path, operation in operations():
        for parameter in operation["parameters"]:
            name, where = parameter["name"], parameter["in"]
            ids = {"session_id": a.sids[0], "goal_id": "f" * 32}  # no such goal: no write
            params: dict[str, str] = {}
            if where == "path":
                ids[name] = value
            else:
                params[name] = value
            response = call(run, method, path, a.key, params=params, **ids)
            assert response.status_code < 500, (method, path, name, response.text[:300])
            assert_no_markers(response, markers, (method, path, name))
            if where == "path" and response.status_code == 404 and "/" in value:
                continue  # an encoded slash leaves the route: the router's own 404
            assert response.headers["content-type"] == "application/json", response.text
            if response.status_code >= 400:
                assert response.json()["error"]
            elif method == "POST":  # a site-free parameter cannot be valid here: undo it
                call(run, "DELETE", "/api/goals/{goal_id}", a.key,
                     goal_id=response.json()["id"])
            else:  # a free-text filter or an ignored value: results are mine or empty
                assert (path, name) == ("/api/outbound-links", "domain"), (path, name)
                assert response.json()["results"] == []
    if value.isascii() and value.isprintable():  # a header can carry it
        response = call(run, "GET", "/api/kpis", value)
        assert response.status_code == 401
    assert fingerprint(run, b.domain) == before[b.domain]
    assert fingerprint(run, a.domain)["events"] == before[a.domain]["events"]
    assert call(run, "GET", "/api/goals", a.key).json() == goals_before


def test_metacharacters_in_goals_and_beacons_are_stored_and_shown_as_literal_text(
        world: tuple[EmbeddedRun, Site, Site]) -> None:
    run, a, b = world
    keys_before = fingerprint(run, b.domain)
    values = [v for v in METACHARACTERS if len(v) <= 100]
    for value in values:
        created = call(run, "POST", "/api/goals", a.key, body={
            "name": value, "type": "click",
            "conditions": [{"field": "text", "operator": "equals", "value": value}]})
        assert created.status_code == 201, (value, created.text)
        goal = created.json()
        assert goal["name"] == value.strip() and goal["conditions"][0]["value"] == value
        updated = call(run, "PUT", "/api/goals/{goal_id}", a.key, goal_id=goal["id"],
                       body={"name": value + "!", "type": "custom", "conditions": [
                           {"field": "name", "operator": "contains", "value": value}]})
        assert updated.status_code == 200 and updated.json()["name"] == value.strip() + "!"
        assert call(run, "DELETE", "/api/goals/{goal_id}", a.key,
                    goal_id=goal["id"]).status_code == 200

    sid = "metacharacters".ljust(22, "m")
    stored_before = run.stored_events()
    for value in values:
        reply = run.post_json({"t": "c", "d": a.domain, "sid": sid,
                               "u": f"https://demo.localhost/{value}", "ct": value,
                               "cu": f"https://metachar.example/?q={value}", "ck": "primary"})
        assert reply.json() == {"ok": True}, (value, reply.text)
    assert run.wait_until_stored(stored_before + len(values))
    timeline = call(run, "GET", "/api/sessions/{session_id}/timeline", a.key, session_id=sid)
    assert timeline.status_code == 200
    texts = sorted(event["detail"]["text"] for event in timeline.json()["results"])
    assert texts == sorted(values)
    urls = call(run, "GET", "/api/outbound-links", a.key,
                params={"period": "all", "domain": "metachar.example"}).json()["results"]
    assert sorted(row["url"] for row in urls) == sorted(
        f"https://metachar.example/?q={v}" for v in set(values))
    assert fingerprint(run, b.domain) == keys_before


@pytest.mark.parametrize("body", [
    b'{"name":"bad \xff utf-8","type":"click"}',
    b'{"name":"surrogate \xed\xa0\x80","type":"click"}',
    b'{"name":"lone \\ud800","type":"click"}',
    b'{"name":"deep","type":"click","conditions":' + b"[" * 3000 + b"]" * 3000 + b"}",
    b"\xff\xfe{}",
], ids=["invalid-utf8", "utf8-surrogate", "lone-escape", "deep", "bom16"])
def test_goal_bodies_that_are_not_json_text_are_400(world: tuple[EmbeddedRun, Site, Site],
                                                    body: bytes) -> None:
    run, a, _ = world
    for method, path in (("POST", "/api/goals"), ("PUT", "/api/goals/{goal_id}")):
        response = run.client.request(method, path.replace("{goal_id}", a.goal_ids[0]),
                                      content=body, headers={"x-api-key": a.key})
        assert response.status_code == 400, (method, response.status_code, response.text)
        assert response.json()["error"]


def test_cors_is_open_on_ingest_only(world: tuple[EmbeddedRun, Site, Site]) -> None:
    run, a, _ = world
    origin = {"origin": "https://evil.example"}
    preflight = run.client.options("/api/event", headers={
        **origin, "access-control-request-method": "POST",
        "access-control-request-headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    for body in (b'{"t":"p","d":"demo.localhost","u":"https://x/","sid":"' + b"c" * 22 + b'"}',
                 b"{", b"x" * 9000, b'{"t":"p","d":"nope.example","u":"u","sid":"'
                 + b"c" * 22 + b'"}'):
        response = run.post(body, **origin)
        assert response.status_code in (202, 400, 413)
        assert response.headers["access-control-allow-origin"] == "*", response.status_code
    assert run.client.get("/js/clickport.js").headers["access-control-allow-origin"] == "*"

    closed = [("GET", "/dashboard"), ("GET", "/"), ("GET", "/api/openapi.json"),
              ("GET", "/readyz"), ("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/demo"),
              ("POST", "/admin/sites"), ("POST", "/admin/keys"), ("POST", "/admin/dlq")]
    for method, path, _ in operations():
        closed.append((method, path.replace("{session_id}", a.sids[0]).replace(
            "{goal_id}", a.goal_ids[0])))
    for method, path in closed:
        for sent in (method, "OPTIONS"):
            headers = {**origin, "x-api-key": a.key}
            if sent == "OPTIONS":
                headers["access-control-request-method"] = method
            response = run.client.request(sent, path, headers=headers,
                                          content=orjson.dumps(GOAL) if sent in (
                                              "POST", "PUT") else None,
                                          follow_redirects=False)
            allowed = [h for h in response.headers if h.startswith("access-control-")]
            assert not allowed, (sent, path, response.status_code, allowed)


@pytest.mark.parametrize(("first", "last"), [("0001-01-01", "0001-01-02"),
                                             ("0253-01-21", "0256-06-04"),
                                             ("0999-12-01", "0999-12-31")])
def test_dates_out_of_the_stores_range_are_400(world: tuple[EmbeddedRun, Site, Site],
                                               first: str, last: str) -> None:
    run, a, _ = world
    for path in ("/api/kpis", "/api/sessions", "/api/outbound-links"):
        response = call(run, "GET", path, a.key, params={"from": first, "to": last})
        assert response.status_code == 400, (path, response.status_code, response.text)
