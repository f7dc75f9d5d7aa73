"""Every migration is restart-safe: a process stopped before any statement of any migration
(or before the migration is recorded) migrates to the end on its next start, with the same
schema as a clean migration and every row it held before, once.

The stop is an exception raised from the Store's ``execute`` just before the chosen
statement, inside its own ``migrate``: the statements are synchronous, so nothing of that
statement has reached the engine, which is what a kill between two statements leaves
behind. Runs on both Stores.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.adapters.chdb_store import ChdbStore
from services.core.store import Store, load_migrations

MIGRATIONS = load_migrations()
SEEDED_BEFORE = 3  # rows go in once 001 and 002 made events and sessions
SEEDS = 5


def record_of(version: int) -> str:
    name = next(m.name for m in MIGRATIONS if m.version == version)
    return f"INSERT INTO schema_migrations (version, name) VALUES ({version}, '{name}')"


# (migration, statements of it that ran before the stop); the last one of each migration is
# "all its statements ran, its record did not".
CUTS = [(m.version, ran) for m in MIGRATIONS for ran in range(len(m.statements) + 1)]


def target_of(version: int, ran: int) -> str:
    migration = next(m for m in MIGRATIONS if m.version == version)
    return migration.statements[ran].sql if ran < len(migration.statements) else \
        record_of(version)


class Stopped(Exception):
    pass


def stop_before(sql: str, execute: Callable[[str], None]) -> Callable[[str], None]:
    def guarded(statement: str) -> None:
        if statement == sql:
            raise Stopped(statement[:40])
        execute(statement)
    return guarded


def migrate_until(store: Store, sql: str) -> None:
    """The Store's own ``migrate``, stopped just before ``sql``."""
    store.execute = stop_before(sql, store.execute)  # type: ignore[method-assign]
    try:
        with pytest.raises(Stopped):
            store.migrate()
    finally:
        del store.execute  # the class's method again


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def open_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Callable[[], Store]]:
    """A factory of fresh, unmigrated Stores of one kind (each one closed after its test)."""
    opened: list[Store] = []

    def fresh() -> Store:
        store: Store
        if request.param == "chdb":
            for earlier in opened:  # chDB serves one data path at a time in a process
                earlier.close()
            opened.clear()
            store = ChdbStore(pathlib.Path(tmp_path_factory.mktemp("migrate")))
        else:
            from services.adapters.clickhouse_store import ClickHouseStore

            store = ClickHouseStore(request.getfixturevalue("clickhouse").fresh_url("migrate"))
        opened.append(store)
        return store

    yield fresh
    for store in opened:
        store.close()


def schema(store: Store) -> list[dict[str, Any]]:
    tables = store.query(
        "SELECT name, engine, partition_key, sorting_key, primary_key FROM system.tables "
        "WHERE database = currentDatabase() ORDER BY name")
    columns = store.query(
        "SELECT table, name, type, default_kind, default_expression, compression_codec "
        "FROM system.columns WHERE database = currentDatabase() ORDER BY table, position")
    return tables + columns


def seed(store: Store) -> None:
    """Rows in the shape of 001 and 002, before anything rebuilds those tables."""
    store.insert("events", [
        {"site_id": "seed.example", "timestamp": 1_764_280_000_000 + i * 86_400_000,
         "name": "pageview", "session_id": f"seed{i}",
         "event_id": f"00000000-0000-0000-0000-00000000000{i}", "visitor_id": i,
         "url": "https://seed.example/", "path": "/"} for i in range(SEEDS)])
    store.insert("sessions", [
        {"site_id": "seed.example", "started_at": 1_764_280_000_000 + i * 86_400_000,
         "session_id": f"seed{i}", "version": 1, "last_event_at": 1_764_280_000_000,
         "pageviews": 1, "events": 1, "is_bounce": 1} for i in range(SEEDS)])


def held(store: Store) -> dict[str, Any]:
    counts = store.query(
        "SELECT (SELECT count() FROM events FINAL WHERE site_id = 'seed.example') AS events, "
        "(SELECT count() FROM sessions FINAL WHERE site_id = 'seed.example') AS sessions, "
        "(SELECT count() FROM schema_migrations) AS records, "
        "(SELECT uniqExact(version) FROM schema_migrations) AS versions")
    return counts[0]


@pytest.fixture(scope="module")
def clean(open_store: Callable[[], Store]) -> list[dict[str, Any]]:
    store = open_store()
    store.migrate()
    return schema(store)


@pytest.mark.parametrize(("version", "ran"), CUTS, ids=[f"{v:03d}-after-{r}" for v, r in CUTS])
def test_a_migration_stopped_before_any_statement_finishes_on_the_next_start(
        open_store: Callable[[], Store], clean: list[dict[str, Any]], version: int, ran: int
) -> None:
    store = open_store()
    early = (version, ran) < (SEEDED_BEFORE, 0)  # no table to seed yet: seed at the end
    if not early:
        migrate_until(store, target_of(SEEDED_BEFORE, 0))
        seed(store)
    if (version, ran) != (SEEDED_BEFORE, 0):
        migrate_until(store, target_of(version, ran))
    applied = store.migrate()  # the next start
    if early:
        seed(store)
    assert applied[0] == next(m.name for m in MIGRATIONS if m.version == version)
    assert store.migrate() == []
    assert schema(store) == clean
    assert held(store) == {"events": SEEDS, "sessions": SEEDS, "records": len(MIGRATIONS),
                           "versions": len(MIGRATIONS)}
