"""Schemathesis against the query API's own OpenAPI document (PRODUCT.md A7), served by
uvicorn on loopback from the real embedded app with a loaded data set and a valid key.

For every operation the document lists: cases generated from the schema (positive: every
parameter and body valid by the schema) must never be a 5xx, must answer a status code the
document lists, with the documented content type, and a body that conforms to the
documented schema; cases that break the schema (negative) must never be a 5xx and must be
JSON. Operations with ids in their path run a second time on real ids of the data set.
Bounded: 50 examples per operation and mode (300 with ``CLICKPORT_LONG_TESTS=1``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from threads import serve

from services.api import openapi
from services.core.settings import Settings
from services.embedded.app import build_embedded_app

from .support import FIREFOX, LONG, SITE

pytestmark = pytest.mark.timeout(900 if LONG else 300)

EXAMPLES = 300 if LONG else 50
POSITIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                   response_schema_conformance]
OPERATIONS = [(method.upper(), path) for path, item in openapi.document()["paths"].items()
              for method in item]


@dataclass
class Served:
    base: str
    key: str
    schema: Any
    sid: str
    goal_id: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = pathlib.Path(tmp_path_factory.mktemp("schemathesis"))
    settings_ = Settings.from_env({}, data_dir=data_dir, batch_max_seconds=0.1,
                                  rate_limit_per_minute=0)
    app = build_embedded_app(settings_)
    with serve(app) as base:
        import httpx

        key = app.state.embedded.demo_key
        sid = "schemathesis".ljust(22, "s")
        page = "https://demo.localhost/"
        for beacon in ({"t": "p", "r": "https://www.google.com/"},
                       {"t": "c", "cu": "https://www.amazon.com/dp/B000000001", "ct": "Buy",
                        "ck": "primary"},
                       {"t": "e", "sd": 60, "vt": 20_000},
                       {"t": "x", "n": "signup", "p": {"plan": "pro"}}):
            response = httpx.post(base + "/api/event", headers={"user-agent": FIREFOX},
                                  json={**beacon, "d": SITE, "u": page, "sid": sid})
            assert response.json() == {"ok": True}
        goal = httpx.post(base + "/api/goals", headers={"x-api-key": key}, json={
            "name": "Amazon", "type": "click",
            "conditions": [{"field": "domain", "operator": "contains", "value": "amazon"}]})
        assert goal.status_code == 201
        schema = schemathesis.openapi.from_url(base + "/api/openapi.json")
        yield Served(base, key, schema, sid, goal.json()["id"])


def run_cases(served: Served, method: str, path: str, *, negative: bool = False,
              path_parameters: dict[str, str] | None = None) -> None:
    operation = served.schema[path][method]
    mode = schemathesis.GenerationMode.NEGATIVE if negative else \
        schemathesis.GenerationMode.POSITIVE
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
    headers = {"x-api-key": served.key}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call(base_url=served.base, headers=headers, timeout=30)
        if negative:
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
            content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
            assert content_type == ["application/json"], response.text
        else:
            case.validate_response(response, checks=POSITIVE_CHECKS, headers=headers)

    check()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_generated_requests_get_documented_answers(served: Served, method: str,
                                                   path: str) -> None:
    run_cases(served, method, path)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_requests_that_break_the_schema_are_never_a_5xx(served: Served, method: str,
                                                        path: str) -> None:
    run_cases(served, method, path, negative=True)


@pytest.mark.parametrize(("method", "path"), [op for op in OPERATIONS if "{" in op[1]],
                         ids=[f"{m} {p}" for m, p in OPERATIONS if "{" in p])
def test_real_ids_get_documented_answers(served: Served, method: str, path: str) -> None:
    ids = {"session_id": served.sid} if "session_id" in path else {"goal_id": served.goal_id}
    run_cases(served, method, path, path_parameters=ids)
