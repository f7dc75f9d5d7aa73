"""Batches as columns: the sessionizer's event and session batches give the Store the same
values the row functions give, and both Stores take rows or columns alike."""

from __future__ import annotations

from typing import Any

from helpers import event

from services.core.rows import EventBatch, SessionBatch, event_row, session_columns
from services.core.session import NOT_A_CLICK, apply_event
from services.core.store import as_columns


def test_event_columns_hold_each_events_row() -> None:
    click = event("click", click_url="https://shop.example/p", click_text="Buy",
                  click_kind="primary", click_domain="shop.example", asin="B0")
    custom = event("custom", name="signup", props={"plan": "pro", "a": "1"})
    engagement = event("engagement", scroll=40, visible_ms=9000)
    batch = EventBatch()
    first = (click.ts, 1)
    for item, goals, mark in ((click, ["g1"], first), (custom, [], NOT_A_CLICK),
                              (engagement, ["g2", "g3"], NOT_A_CLICK)):
        batch.add(item, goals, mark)
    columns = as_columns(batch)
    rows = [{name: values[i] for name, values in columns.items()} for i in range(len(batch))]
    assert rows == [event_row(click, ["g1"], first), event_row(custom, []),
                    event_row(engagement, ["g2", "g3"])]
    assert (rows[0]["first_click_at"], rows[0]["is_first_click"]) == (click.ts, 1)
    assert (rows[1]["first_click_at"], rows[1]["is_first_click"]) == (0, 0)
    assert rows[0]["meta_keys"] == ("click_url", "click_text", "asin", "click_kind")
    assert rows[0]["meta_values"] == ("https://shop.example/p", "Buy", "B0", "primary")
    assert (rows[1]["meta_keys"], rows[1]["meta_values"]) == (("a", "plan"), ("1", "pro"))
    assert rows[1]["name"] == "custom" and rows[1]["custom_name"] == "signup"
    assert (rows[2]["scroll_depth"], rows[2]["visible_ms"]) == (40, 9000)
    assert (rows[2]["meta_keys"], rows[2]["meta_values"]) == ((), ())


def test_an_event_batch_knows_its_oldest_receive_time() -> None:
    batch = EventBatch()
    for ts in (5_000, 3_000, 9_000):  # a replayed or late event can come after newer ones
        batch.add(event(ts=ts), [], NOT_A_CLICK)
    assert batch.oldest_ms == 3_000


def test_a_session_batch_writes_only_the_last_state_of_each_session() -> None:
    first, _ = apply_event(None, event("pageview", path="/a"), 1)
    second, _ = apply_event(first, event("engagement", scroll=60, visible_ms=20_000), 2)
    other, _ = apply_event(None, event("click", sid="t" * 22), 3)
    batch = SessionBatch()
    for state in (first, other, second):
        batch.put((state.site, state.sid), state)
    columns = batch.columns()
    assert len(batch) == 2
    assert columns["session_id"] == ["s" * 22, "t" * 22]
    assert columns["version"] == [2, 1]
    assert columns["entry_page"] == ["/a", ""]
    assert columns["is_bounce"] == [0, 0] and columns["has_clicked"] == [0, 1]
    assert columns["duration"] == [20, 0]
    assert columns == session_columns([second, other])


def test_rows_become_columns_in_their_key_order() -> None:
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert as_columns(rows) == {"a": [1, 2], "b": ["x", "y"]}


def test_the_clickhouse_store_sends_columns_in_types_the_driver_writes_natively() -> None:
    from services.adapters.clickhouse_store import ClickHouseStore

    sent: dict[str, Any] = {}

    class FakeClient:
        def execute(self, sql: str, data: Any, **kwargs: Any) -> None:
            sent.update(sql=sql, data=data, **kwargs)

    store = ClickHouseStore("clickhouse://localhost:9000/default")
    store._types["t"] = ({"id": "UUID", "at": "DateTime64(3, 'UTC')", "n": "UInt8",
                          "tags": "Array(LowCardinality(String))", "kind": "LowCardinality(String)",
                          "clicks": "Array(DateTime64(3, 'UTC'))", "day": "Date"},
                         frozenset({"id", "at", "n", "tags", "kind", "clicks", "day"}))
    store._local.client = FakeClient()

    class Plain:  # any Columns will do
        def __len__(self) -> int:
            return 2

        def columns(self) -> dict[str, Any]:
            return {"id": ("0" * 32, "f" * 32), "at": (0, 1500), "n": (1, 2),
                    "tags": ((), ("a", "b")), "kind": ("x", "y"), "clicks": ((), (7, 8)),
                    "day": ("2026-01-02", "2026-01-03")}

    store.insert("t", Plain(), dedup_token="tok")
    assert sent["sql"] == (
        "INSERT INTO t (id, at, n, tags, kind, clicks, day) SELECT id, "
        "fromUnixTimestamp64Milli(at), n, tags, kind, "
        "arrayMap(t -> fromUnixTimestamp64Milli(t), clicks), day FROM input('id String, "
        "at Int64, n UInt8, tags Array(String), kind String, clicks Array(Int64), "
        "day String') FORMAT Native")
    assert sent["columnar"] is True
    assert sent["settings"] == {"insert_deduplication_token": "tok", "optimize_on_insert": 0}
    ids, ats, ns, tags, kinds, clicks, days = sent["data"]
    assert list(ids) == ["0" * 32, "f" * 32]
    assert list(ats) == [0, 1500] and all(type(a) is int for a in ats)
    assert ns == (1, 2) and tags == ((), ("a", "b")) and kinds == ("x", "y")
    assert [list(c) for c in clicks] == [[], [7, 8]]
    assert list(days) == ["2026-01-02", "2026-01-03"]
    # A column empty in the whole batch, with the type's zero as its default, is not sent.
    store.insert("t", [{"id": "0" * 32, "at": 5, "n": 3, "tags": (), "kind": "",
                        "clicks": (), "day": "2026-01-02"}])
    assert sent["sql"].startswith("INSERT INTO t (id, at, n, day) SELECT ")
    assert sent["data"][2] == [3] and sent["settings"] == {"optimize_on_insert": 0}


def test_the_clickhouse_driver_cuts_blocks_where_the_store_cuts_statements() -> None:
    """An INSERT ... FROM input() takes one block (a second would hang the driver): the
    driver's block size must be the Store's statement size."""
    from services.adapters import clickhouse_store

    client = clickhouse_store._client_for("clickhouse://localhost:9000/default")
    assert client.client_settings["insert_block_size"] == clickhouse_store.INSERT_BLOCK_ROWS
