"""The Store contract, run against every Store available: chDB always; a ClickHouse server
when one is reachable (see conftest `stores`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

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


# What every Store returns for a value of each type: ClickHouse's JSON values, as chDB gives
# them (services/adapters/clickhouse_values.py). Compared by repr, so 1 is not 1.0 and a
# tuple is not a list.
RESULT_VALUES = [
    ("toDateTime64('2026-01-02 03:04:05.678', 3, 'UTC')", "2026-01-02 03:04:05.678"),
    ("toDateTime64('2026-01-02 03:04:05.000', 3, 'UTC')", "2026-01-02 03:04:05.000"),
    ("toDateTime64('2026-01-02 03:04:05.678901', 6, 'UTC')", "2026-01-02 03:04:05.678901"),
    ("toDateTime64('2026-01-02 03:04:05.678', 0, 'UTC')", "2026-01-02 03:04:05"),
    ("toDateTime64('1900-01-01 00:00:00.001', 3, 'UTC')", "1900-01-01 00:00:00.001"),
    ("toDateTime('2026-01-02 03:04:05', 'UTC')", "2026-01-02 03:04:05"),
    ("toDateTime64('2026-01-02 03:04:05.678', 3, 'Asia/Kolkata')", "2026-01-02 03:04:05.678"),
    ("toDate('2026-01-02')", "2026-01-02"),
    ("toDate32('1900-01-02')", "1900-01-02"),
    ("toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0')", "61f0c404-5cb3-11e7-907b-a6006ad3dba0"),
    ("toIPv4('192.0.2.1')", "192.0.2.1"),
    ("toUInt64(18446744073709551615)", 18446744073709551615),
    ("toInt64(-9223372036854775808)", -9223372036854775808),
    ("toUInt128('340282366920938463463374607431768211455')", 2**128 - 1),
    ("toInt128('-170141183460469231731687303715884105728')", -(2**127)),
    ("toDecimal64(12.50, 2)", 12.5),
    ("toDecimal64(12, 2)", 12),
    ("toDecimal128('1000000000000000000000000000001', 0)", 10**30 + 1),
    ("toDecimal128('-0.125', 3)", -0.125),
    ("toFloat64(0.1)", 0.1),
    ("toFloat64(2) / 3", 2 / 3),
    ("toFloat64(3) / 3", 1),
    ("toFloat64(1e16)", 10**16),
    ("toFloat64(1e20)", 1e20),
    ("toFloat64(-0.0)", 0),
    ("nan", None),
    ("-inf", None),
    ("toFloat32(0.1)", 0.1),
    ("toFloat32(123456.78)", 123456.78),
    ("[toDateTime64('2026-01-02 03:04:05.678', 3, 'UTC')]", ["2026-01-02 03:04:05.678"]),
    ("[[toDate('2026-01-02')], []]", [["2026-01-02"], []]),
    ("(1, toDate('2026-01-02'))", [1, "2026-01-02"]),
    ("CAST((1, toDate('2026-01-02')), 'Tuple(a UInt8, `b c` Date)')",
     {"a": 1, "b c": "2026-01-02"}),
    ("[(1, 'x')]", [[1, "x"]]),
    ("map(toDate('2026-01-02'), 1, toDate('2026-01-03'), 2)",
     {"2026-01-02": 1, "2026-01-03": 2}),
    ("map(7, [toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0')])",
     {"7": ["61f0c404-5cb3-11e7-907b-a6006ad3dba0"]}),
    ("CAST(NULL, 'Nullable(Date)')", None),
    ("toNullable(toDate('2026-01-02'))", "2026-01-02"),
    ("toLowCardinality(toNullable('x'))", "x"),
    ("[NULL, toFloat64(1.5), nan]", [None, 1.5, None]),
    ("CAST('a,b', 'Enum8(\\'a,b\\' = 1, \\'c\\' = 2)')", "a,b"),
    ("true", True),
]


@pytest.mark.parametrize(("expression", "expected"), RESULT_VALUES,
                         ids=[expression for expression, _ in RESULT_VALUES])
def test_every_store_returns_the_same_values(store: Store, expression: str,
                                             expected: object) -> None:
    rows = store.query(f"SELECT {expression} AS v")
    assert repr(rows) == repr([{"v": expected}])


def test_stored_columns_read_back_as_the_same_values(store: Store) -> None:
    """The schema's own types, read raw: DateTime64, Date (via toDate), UUID, UInt128 (the
    materialized session_key, exact past 64 bits) and Array(DateTime64)."""
    event_id = uuid.uuid4().hex
    store.insert("events", [event_row(event_id, session_id="typed")])
    rows = store.query(
        "SELECT timestamp, toDate(timestamp) AS day, event_id, session_key, "
        "toString(session_key) AS key_text FROM events WHERE event_id = {e:UUID}",
        {"e": event_id})
    assert repr(rows) == repr([{
        "timestamp": "2025-11-27 21:59:07.607", "day": "2025-11-27",
        "event_id": str(uuid.UUID(event_id)), "session_key": int(rows[0]["key_text"]),
        "key_text": rows[0]["key_text"]}])
    store.insert("sessions", [{
        "site_id": "example.com", "session_id": "typed", "version": 1,
        "started_at": 1_764_280_000_000, "last_event_at": 1_764_280_000_001,
        "clicked_domains": ["a.com"], "clicked_first_at": [1_764_280_000_002]}])
    rows = store.query("SELECT clicked_first_at, started_at FROM sessions "
                       "WHERE session_id = 'typed'")
    assert repr(rows) == repr([{"clicked_first_at": ["2025-11-27 21:46:40.002"],
                                "started_at": "2025-11-27 21:46:40.000"}])


def test_a_timestamp_goes_in_as_milliseconds_or_an_aware_datetime(store: Store) -> None:
    """Rows carry integer milliseconds; a datetime (naive taken as UTC) is stored as the
    same instant by every Store, since chDB's Arrow column takes one too."""
    moment = dt.datetime(2025, 11, 27, 21, 59, 7, 607_000, tzinfo=dt.UTC)
    sid = uuid.uuid4().hex
    for stamp in (1_764_280_747_607, moment, moment.replace(tzinfo=None),
                  moment.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))):
        store.insert("events", [event_row(uuid.uuid4().hex, session_id=sid, timestamp=stamp)])
    rows = store.query("SELECT toUnixTimestamp64Milli(timestamp) AS ms FROM events "
                       "WHERE session_id = {s:String}", {"s": sid})
    assert rows == [{"ms": 1_764_280_747_607}] * 4


def test_a_server_profile_with_the_query_cache_on_changes_no_answer(clickhouse: Any) -> None:
    """A server's user profile may turn the query cache on (given here in the URL, which the
    driver sends as the session's settings, as a profile would set them). chDB has none, and
    ClickHouseStore keeps it off: a cached answer would outlive the rows it counted, and a
    query with ``currentDatabase()`` in it (every insert reads the columns so) is refused."""
    from services.adapters.clickhouse_store import ClickHouseStore

    store = ClickHouseStore(clickhouse.fresh_url() + "?use_query_cache=1&query_cache_ttl=600")
    try:
        store.migrate()
        counts = [store.query("SELECT count() AS n FROM events")[0]["n"]]
        store.insert("events", [event_row(uuid.uuid4().hex)])
        counts.append(store.query("SELECT count() AS n FROM events")[0]["n"])
        assert counts == [0, 1]
    finally:
        store.close()


def test_typed_columns_arrive_exactly(store: Store) -> None:
    """Each Store converts our values (hex ids, integer milliseconds, day text, string lists)
    for its engine its own way; the stored values must be the same."""
    event_id = uuid.uuid4()
    store.insert("events", [event_row(event_id.hex, session_id="typed-wire", name="pageview",
                                      timestamp=1_764_280_747_001, first_click_at=86_400_123,
                                      meta_keys=["a", "b"], meta_values=["1", "2"])])
    rows = store.query(
        "SELECT toString(event_id) AS id, toUnixTimestamp64Milli(timestamp) AS ms, "
        "toUnixTimestamp64Milli(first_click_at) AS first_ms, name, meta_keys FROM events "
        "WHERE session_id = 'typed-wire'")
    assert rows == [{"id": str(event_id), "ms": 1_764_280_747_001, "first_ms": 86_400_123,
                     "name": "pageview", "meta_keys": ["a", "b"]}]
    store.insert("sessions", [{"site_id": "example.com", "started_at": 1_764_280_000_000,
                               "session_id": "typed-wire", "version": 1,
                               "last_event_at": 1_764_280_000_999,
                               "clicked_domains": ["a.com", "b.com"],
                               "clicked_first_at": [1_764_280_000_001, 1_764_280_000_002]}])
    rows = store.query(
        "SELECT toUnixTimestamp64Milli(last_event_at) AS last_ms, clicked_domains, "
        "arrayMap(t -> toUnixTimestamp64Milli(t), clicked_first_at) AS firsts "
        "FROM sessions WHERE session_id = 'typed-wire'")
    assert rows == [{"last_ms": 1_764_280_000_999, "clicked_domains": ["a.com", "b.com"],
                     "firsts": [1_764_280_000_001, 1_764_280_000_002]}]
    salt = uuid.uuid4().hex  # a day far ahead: kept by the TTL, never read as a salt
    store.insert("visitor_salts", [{"day": "2100-01-02", "salt": salt}])
    rows = store.query("SELECT toString(day) AS day FROM visitor_salts WHERE salt = {s:String}",
                       {"s": salt})
    assert rows == [{"day": "2100-01-02"}]


def test_broken_parts_are_looked_for_on_either_store_and_a_detached_part_is_not_one(
        store: Store) -> None:
    """`DamageWatch`'s query runs on both engines' ``system.detached_parts``; a part an
    operator detached (reason empty) is not damage. (A broken part needs the engine to start
    on a damaged file: tests/reliability/test_store_damage.py, on chDB.)"""
    from services.core.store_damage import DamageWatch

    store.execute("CREATE TABLE IF NOT EXISTS damage_probe (n UInt32) ENGINE = MergeTree "
                  "ORDER BY n")
    store.execute("INSERT INTO damage_probe VALUES (1)")
    part = store.query("SELECT name FROM system.parts WHERE database = currentDatabase() "
                       "AND table = 'damage_probe' AND active")[0]["name"]
    store.execute(f"ALTER TABLE damage_probe DETACH PART '{part}'")
    assert store.query("SELECT name, reason FROM system.detached_parts WHERE database = "
                       "currentDatabase() AND table = 'damage_probe'") == [
        {"name": part, "reason": ""}]
    watch = DamageWatch(store)
    watch.check()
    assert (watch.parts, watch.check_failed, watch.problem()) == ((), "", None)
