"""One embedded app (ingest -> disk queue -> sessionizer -> Store -> API) for every API test,
on each Store in turn: chDB in the data dir, then a ClickHouse server (the `clickhouse`
fixture, a database of its own). The data set in dataset.py is posted through
``POST /api/event`` and written by the real sessionizer, so both Stores hold what the same
path wrote and every test makes the same assertions on each.

Package scope, one Store at a time: chDB serves one data path per process, so its app must
close before the next directory's tests open theirs. pytest runs a package-scoped
parameter's tests together and finishes one parameter's fixture before it sets up the next;
`_one_app_at_a_time` makes that an assertion rather than an assumption.
"""

from __future__ import annotations

import contextlib
import pathlib
import time
from collections.abc import Iterator

import pytest
from helpers import STORES, new_sid, store_settings
from starlette.testclient import TestClient

from services.core import sites as site_rules
from services.core.settings import Settings
from services.embedded.app import build_embedded_app

from .dataset import GOALS_A, SITE_A, SITE_B, Loaded, dataset

_open: list[str] = []


@pytest.fixture(scope="package", params=STORES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Loaded]:
    data_dir = pathlib.Path(tmp_path_factory.mktemp(f"api-data-{request.param}"))
    settings = Settings.from_env({}, data_dir=data_dir, batch_max_seconds=0.1,
                                 rate_limit_per_minute=0,
                                 **store_settings(request, "clickport_api"))
    with _one_app_at_a_time(request.param), TestClient(build_embedded_app(settings)) as client:
        parts = client.app.state.embedded  # type: ignore[attr-defined]
        _, key_b = site_rules.add_site(parts.store, SITE_B)
        parts.known_sites.add(SITE_B)
        data = Loaded(client, parts.demo_key, key_b)
        for goal in GOALS_A:
            data.goal_ids[goal["name"]] = data.create_goal(goal)
        data.refresh_goals(SITE_A, len(GOALS_A))
        posted = 0
        for label, _site, visitor, beacons in dataset():
            sid = data.sids[label] = new_sid()
            for beacon in beacons(sid):
                data.post_beacon(beacon, visitor)
                posted += 1
            time.sleep(0.003)  # distinct start milliseconds, so "newest first" is exact
        data.wait_until_stored(posted)
        yield data


@contextlib.contextmanager
def _one_app_at_a_time(name: str) -> Iterator[None]:
    assert not _open, f"the {_open} API app is still open while the {name} one opens"
    _open.append(name)
    try:
        yield
    finally:
        _open.remove(name)
