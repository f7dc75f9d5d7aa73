"""The outbound report reads one site's date range through the primary key: ``EXPLAIN
indexes = 1`` on chDB shows the key condition on site_id and the day, and the partition
pruning on the day. The plan is printed (run with -s) for docs/api.md."""

from __future__ import annotations

import datetime as dt

from services.api import queries
from services.api.periods import resolve_period

from .dataset import SITE_A, Loaded


def test_outbound_query_uses_the_primary_key(loaded: Loaded) -> None:
    period = resolve_period("30d", None, None, "UTC", dt.datetime.now(dt.UTC))
    rows = loaded.parts.store.query("EXPLAIN indexes = 1 " + queries.OUTBOUND_DOMAINS,
                                    {"site": SITE_A, **period.bounds()})
    plan = "\n".join(row["explain"] for row in rows)
    print("\n" + plan)
    assert "PrimaryKey" in plan and "site_id" in plan
    assert "toDate(timestamp)" in plan or "timestamp" in plan.split("PrimaryKey", 1)[1]
