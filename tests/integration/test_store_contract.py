"""The Store contract, run against every Store available: chDB always; a ClickHouse server
when one is reachable (see conftest `stores`)."""

from __future__ import annotations

import uuid

import pytest

from services.core.store import Store, load_migrations


def event_row(event_id: str, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "site_id": "example.com", "timestamp": 1_764_280_747_607, "name": "click",
        "session_id": "s1", "event_id": event_id, "visitor_id": 18446744073709551615,
        "url": "https://example.com/", "path": "/", "click_domain": "stripe.com",
        "meta_keys": ["click_url", "click_text"], "meta_values": ["https://stripe.com/", "x"],
    }
    row.update(overrides)
    return row


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == []
    tables = {r["name"] for r in store.query("SELECT name FROM system.tables "
                                              "WHERE database = currentDatabase()")}
    assert {"events", "sessions", "sites", "api_keys", "goals", "schema_migrations"} <= tables
    applied = store.query("SELECT count() AS n FROM schema_migrations")[0]["n"]
    assert applied == len(load_migrations())


def test_rows_round_trip_with_exact_values(store: Store) -> None:
    text = "it's a \"quote\" \\ back\\slash, ünïcödé, {braces} -- ; DROP TABLE events"
    store.insert("events", [event_row(uuid.uuid4().hex, meta_values=["https://s.com/", text])])
    rows = store.query(
        "SELECT toUnixTimestamp64Milli(timestamp) AS ms, visitor_id, meta_values[2] AS text "
        "FROM events WHERE meta_values[2] = {t:String}", {"t": text})
    assert rows == [{"ms": 1_764_280_747_607, "visitor_id": 18446744073709551615, "text": text}]


def test_a_retried_batch_with_the_same_token_is_written_once(store: Store) -> None:
    batch = [event_row(uuid.uuid4().hex, session_id="tok") for _ in range(3)]
    for _ in range(3):
        store.insert("events", batch, dedup_token="e-test-token-1")
    assert store.query("SELECT count() AS n FROM events WHERE session_id = 'tok'")[0]["n"] == 3


def test_a_batch_of_several_statements_is_written_whole_and_once(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """ClickHouseStore sends at most INSERT_BLOCK_ROWS rows per statement; a batch of more is
    several statements, each deduplicated on its own retry (chDB: one statement anyway)."""
    from services.adapters import clickhouse_store

    monkeypatch.setattr(clickhouse_store, "INSERT_BLOCK_ROWS", 2)
    batch = [event_row(uuid.uuid4().hex, session_id="parts") for _ in range(5)]
    for _ in range(2):
        store.insert("events", batch, dedup_token="e-test-token-parts")
    rows = store.query("SELECT count() AS n, uniqExact(event_id) AS ids FROM events "
                       "WHERE session_id = 'parts'")
    assert rows == [{"n": 5, "ids": 5}]


def test_a_replayed_event_id_is_counted_once_with_final(store: Store) -> None:
    event_id = uuid.uuid4().hex
    store.insert("events", [event_row(event_id, session_id="rep")])
    store.insert("events", [event_row(event_id, session_id="rep"),
                            event_row(uuid.uuid4().hex, session_id="rep")])
    rows = store.query("SELECT count() AS n FROM events FINAL WHERE session_id = 'rep'")
    assert rows[0]["n"] == 2


def test_sessions_final_shows_the_latest_version(store: Store) -> None:
    base = {"site_id": "example.com", "started_at": 1_764_280_000_000, "session_id": "v",
            "last_event_at": 1_764_280_000_000, "pageviews": 1, "has_clicked": 0, "is_bounce": 1}
    store.insert("sessions", [{**base, "version": 7, "has_clicked": 1, "is_bounce": 0}])
    store.insert("sessions", [{**base, "version": 5}])
    store.insert("sessions", [{**base, "version": 7, "has_clicked": 1, "is_bounce": 0}])
    rows = store.query("SELECT version, has_clicked, is_bounce FROM sessions FINAL "
                       "WHERE session_id = {s:String}", {"s": "v"})
    assert rows == [{"version": 7, "has_clicked": 1, "is_bounce": 0}]


def test_bound_strings_arrive_exactly(store: Store) -> None:
    for value in ["a\\b", "tab\there", "line\nbreak", "\\", "end\\", "nul\0x", "{x:String}",
                  "' OR 1=1 --", "ü€😀"]:
        assert store.query("SELECT {v:String} AS v", {"v": value}) == [{"v": value}]


def test_a_column_empty_in_the_whole_batch_is_stored_empty(store: Store) -> None:
    """chDB leaves such a column to the table's default, which must then be the same empty
    value; a column whose DEFAULT differs (created_at: now64) still gets what was given."""
    sid = uuid.uuid4().hex
    store.insert("events", [event_row(uuid.uuid4().hex, session_id=sid, utm_term="",
                                      goals=[], scroll_depth=0) for _ in range(2)])
    rows = store.query("SELECT utm_term, goals, scroll_depth FROM events "
                       "WHERE session_id = {s:String}", {"s": sid})
    assert rows == [{"utm_term": "", "goals": [], "scroll_depth": 0}] * 2
    # a day far ahead: kept by the TTL, and never a day whose salt anything reads
    store.insert("visitor_salts", [{"day": "2100-01-01", "salt": sid, "created_at": 0}])
    rows = store.query("SELECT toUnixTimestamp64Milli(created_at) AS ms FROM visitor_salts "
                       "WHERE salt = {s:String}", {"s": sid})
    assert rows == [{"ms": 0}]


def test_typed_columns_arrive_exactly(store: Store) -> None:
    """Each Store converts our values (hex ids, integer milliseconds, day text, string lists)
    for its engine its own way; the stored values must be the same."""
    event_id = uuid.uuid4()
    store.insert("events", [event_row(event_id.hex, session_id="typed", name="pageview",
                                      timestamp=1_764_280_747_001, first_click_at=86_400_123,
                                      meta_keys=["a", "b"], meta_values=["1", "2"])])
    rows = store.query(
        "SELECT toString(event_id) AS id, toUnixTimestamp64Milli(timestamp) AS ms, "
        "toUnixTimestamp64Milli(first_click_at) AS first_ms, name, meta_keys FROM events "
        "WHERE session_id = 'typed'")
    assert rows == [{"id": str(event_id), "ms": 1_764_280_747_001, "first_ms": 86_400_123,
                     "name": "pageview", "meta_keys": ["a", "b"]}]
    store.insert("sessions", [{"site_id": "example.com", "started_at": 1_764_280_000_000,
                               "session_id": "typed", "version": 1,
                               "last_event_at": 1_764_280_000_999,
                               "clicked_domains": ["a.com", "b.com"],
                               "clicked_first_at": [1_764_280_000_001, 1_764_280_000_002]}])
    rows = store.query(
        "SELECT toUnixTimestamp64Milli(last_event_at) AS last_ms, clicked_domains, "
        "arrayMap(t -> toUnixTimestamp64Milli(t), clicked_first_at) AS firsts "
        "FROM sessions WHERE session_id = 'typed'")
    assert rows == [{"last_ms": 1_764_280_000_999, "clicked_domains": ["a.com", "b.com"],
                     "firsts": [1_764_280_000_001, 1_764_280_000_002]}]
    salt = uuid.uuid4().hex  # a day far ahead: kept by the TTL, never read as a salt
    store.insert("visitor_salts", [{"day": "2100-01-02", "salt": salt}])
    rows = store.query("SELECT toString(day) AS day FROM visitor_salts WHERE salt = {s:String}",
                       {"s": salt})
    assert rows == [{"day": "2100-01-02"}]
