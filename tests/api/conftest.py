"""One embedded app (ingest -> disk queue -> sessionizer -> chDB -> API) for every API test,
loaded once with the data set in dataset.py, posted through ``POST /api/event`` and written
by the real sessionizer. Package scope: chDB serves one data path per process, so the app
must close before the next directory's tests open theirs."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator

import pytest
from helpers import new_sid
from starlette.testclient import TestClient

from services.core import sites as site_rules
from services.core.settings import Settings
from services.embedded.app import build_embedded_app

from .dataset import GOALS_A, SITE_A, SITE_B, Loaded, dataset


@pytest.fixture(scope="package")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    data_dir = pathlib.Path(tmp_path_factory.mktemp("api-data"))
    settings = Settings.from_env({}, data_dir=data_dir, batch_max_seconds=0.1,
                                 rate_limit_per_minute=0)
    with TestClient(build_embedded_app(settings)) as client:
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
