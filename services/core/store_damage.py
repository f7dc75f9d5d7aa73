"""Store damage: parts of a table that the engine set aside because it could not read them.

A MergeTree part whose files are missing or do not match its checksums (a truncated or
removed data file) is moved to ``detached/broken-on-start_*`` when the engine starts, and its
rows are then in no answer; the engine itself says nothing a Clickport operator would see.
`DamageWatch` looks for such parts in ``system.detached_parts`` (the same table on chDB and on
a ClickHouse server) at start and every `CHECK_SECONDS`, logs an ERROR once per part, and
makes it a ``/readyz`` problem until an operator restores the data or acknowledges the loss
(docs/operations.md, "Store damage").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client.core import Metric

from services.core.metrics import gauge
from services.core.readiness import Problem
from services.core.store import Store, StoreError, error_summary

log = logging.getLogger("clickport.store")

STORE_DAMAGED = "store_damaged"
CHECK_SECONDS = 60.0
RECOVERY = 'docs/operations.md, "Store damage"'
# broken, broken-on-start, broken-from-backup: the engine could not load the part. A part an
# operator detached (``ALTER TABLE ... DETACH PART``) has an empty reason and is not damage.
BROKEN_PARTS_QUERY = (
    "SELECT table, name, reason, partition_id, bytes_on_disk FROM system.detached_parts "
    "WHERE database = currentDatabase() AND startsWith(reason, 'broken') ORDER BY table, name")


@dataclass(frozen=True)
class BrokenPart:
    table: str
    name: str  # the directory under detached/, e.g. broken-on-start_20261204_2_2_1
    reason: str
    partition: str  # a day (YYYYMMDD) for events and sessions


class DamageWatch:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.parts: tuple[BrokenPart, ...] = ()
        self.check_failed = ""  # why the last check could not run, if it could not
        self._logged: set[tuple[str, str]] = set()

    def check(self) -> None:
        """Look again (blocking: run it in a thread)."""
        try:
            rows = self.store.query(BROKEN_PARTS_QUERY)
        except StoreError as exc:  # keep what the last check found; the next one tries again
            if not self.check_failed:
                log.warning("cannot look for damaged parts in the Store: %s",
                            error_summary(str(exc)))
            self.check_failed = error_summary(str(exc))
            return
        self.check_failed = ""
        self.parts = tuple(BrokenPart(r["table"], r["name"], r["reason"], r["partition_id"])
                           for r in rows)
        for part in self.parts:
            if (part.table, part.name) in self._logged:
                continue
            self._logged.add((part.table, part.name))
            log.error("the Store is damaged: it could not read a part of table %s (partition "
                      "%s) and set it aside as %s (%s); its rows are missing from every answer "
                      "until it is restored or the loss acknowledged (%s)", part.table,
                      part.partition, part.name, part.reason, RECOVERY)

    def problem(self) -> Problem | None:
        if not self.parts:
            return None
        return Problem(STORE_DAMAGED, {
            "parts": [f"{p.table}/detached/{p.name}" for p in self.parts],
            "recover": f"restore from a backup, or acknowledge the loss: {RECOVERY}"})

    def metrics(self) -> list[Metric]:
        return [gauge("clickport_store_broken_parts",
                      "Parts the Store set aside as broken (detached), as last checked",
                      len(self.parts))]
