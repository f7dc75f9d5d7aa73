"""The daily random visitor salts (I3): shared by replicas through the Store, rotated at UTC
midnight, forgotten after a grace period, and never consulted per request. Runs against a
small in-memory stand-in of the salts table, against chDB (the real SQL, ~0.2 s) and against
a ClickHouse server."""

from __future__ import annotations

import asyncio
import ipaddress
import pathlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
import pytest
from helpers import STORES, pageview, store_settings

from services.adapters.chdb_store import ChdbStore
from services.core.beacon import decode_beacon
from services.core.event import Event, encode_event
from services.core.store import Row, Store, StoreUnavailable
from services.ingest.salts import MS_PER_DAY, SaltBook, SaltUnavailable, day_number, day_text
from services.ingest.steps import Context, Incoming, process
from services.ingest.user_agents import UserAgents

DAY = time.time_ns() // 1_000_000 // MS_PER_DAY  # today: the table's TTL uses the real clock
NOON = DAY * MS_PER_DAY + 12 * 3_600_000
IP = "198.51.100.77"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SID = "abcdefghijklmnopqrstuv"
USER_AGENTS = UserAgents()


class SaltTable:
    """The visitor_salts table as SaltBook uses it: an insert with a token already seen is
    dropped (ClickHouse insert deduplication) and reads give min(salt) per day."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []
        self.tokens: set[str] = set()
        self.queries = 0
        self.down = False

    def migrate(self) -> list[str]:
        return []

    def insert(self, table: str, rows: Sequence[Row], *, dedup_token: str = "") -> None:
        self._check()
        assert table == "visitor_salts"
        if dedup_token in self.tokens:
            return
        self.tokens.add(dedup_token)
        self.rows += [(str(r["day"]), str(r["salt"])) for r in rows]

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self._check()
        self.queries += 1
        assert "min(salt)" in sql and not params
        best: dict[str, str] = {}
        for day, salt in self.rows:
            if day not in best or salt < best[day]:
                best[day] = salt
        return [{"d": day, "s": salt} for day, salt in best.items()]

    def close(self) -> None: ...

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("salt table is down")


@pytest.fixture(params=["table", *STORES])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Store]:
    if request.param == "table":
        yield SaltTable()
        return
    real: Store
    if request.param == "chdb":
        real = ChdbStore(tmp_path / "chdb")
    else:
        from services.adapters.clickhouse_store import ClickHouseStore

        real = ClickHouseStore(store_settings(request)["clickhouse_url"])
    real.migrate()
    yield real
    real.close()


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def book(store: Store, clock: Clock, pepper: bytes = b"pepper") -> SaltBook:
    salts = SaltBook(store, pepper=pepper, now_ms=clock)
    salts.refresh_now()
    return salts


def visit(salts: SaltBook, at: int, ip: str = IP) -> Event:
    context = Context({"example.com"}, salts, lambda ip, now: True, USER_AGENTS.classify)
    beacon = decode_beacon(orjson.dumps(pageview(SID)))
    result = process(Incoming(beacon, ip, UA, at), context)
    assert isinstance(result, Event)
    return result


def test_two_replicas_agree_today_and_both_change_tomorrow(store: Store) -> None:
    clock = Clock(NOON)
    first, second = book(store, clock), book(store, clock)
    today = visit(first, NOON).vid
    assert visit(second, NOON + 5_000).vid == today

    clock.ms = NOON + MS_PER_DAY
    first.refresh_now()
    second.refresh_now()
    tomorrow = visit(first, clock.ms).vid
    assert visit(second, clock.ms + 5_000).vid == tomorrow != today


def test_the_visitor_id_changes_at_utc_midnight(store: Store) -> None:
    clock = Clock(DAY * MS_PER_DAY + 86_399_000)  # 23:59:59
    salts = book(store, clock)
    before = visit(salts, clock.ms).vid
    assert visit(salts, clock.ms + 500).vid == before
    clock.ms = (DAY + 1) * MS_PER_DAY + 1_000  # 00:00:01, tomorrow's salt was made a day ahead
    assert visit(salts, clock.ms).vid != before


def test_salts_are_random_not_derived(store: Store) -> None:
    clock = Clock(NOON)
    book(store, clock)
    rows = store.query("SELECT toString(day) AS d, min(salt) AS s FROM visitor_salts "
                       "GROUP BY day")
    salts = {row["d"]: row["s"] for row in rows}
    assert set(salts) == {day_text(DAY), day_text(DAY + 1)}  # today's and tomorrow's
    assert len(set(salts.values())) == 2 and all(len(s) == 64 for s in salts.values())


def test_the_first_candidate_wins_a_race() -> None:
    table = SaltTable()
    clock = Clock(NOON)
    first = SaltBook(table, now_ms=clock, new_salt=lambda: "b" * 64)
    second = SaltBook(table, now_ms=clock, new_salt=lambda: "a" * 64)
    first.refresh_now()
    second.refresh_now()
    assert first(NOON) == second(NOON)
    assert table.rows[0][1] == "b" * 64 and len(table.rows) == 2  # today + tomorrow, once


def test_racing_candidates_settle_on_min_salt_without_deduplication() -> None:
    table = SaltTable()
    table.rows = [(day_text(DAY), "b" * 64), (day_text(DAY), "a" * 64)]
    table.tokens = {f"salt-{day_text(DAY)}"}
    clock = Clock(NOON)
    assert book(table, clock)(NOON) == book(table, clock, b"pepper")(NOON)
    only_a = SaltTable()
    only_a.rows = [(day_text(DAY), "a" * 64)]
    only_a.tokens = {f"salt-{day_text(DAY)}"}
    assert book(table, clock)(NOON) == book(only_a, clock)(NOON)


def test_yesterdays_salt_is_kept_for_the_grace_hour_then_forgotten(store: Store) -> None:
    clock = Clock(NOON)
    salts = book(store, clock)
    clock.ms = (DAY + 1) * MS_PER_DAY + 30 * 60_000  # 00:30 the next day
    salts.refresh_now()
    assert salts.days() == [day_text(DAY), day_text(DAY + 1), day_text(DAY + 2)]
    salts(NOON)  # a late event of yesterday still gets yesterday's id
    clock.ms = (DAY + 1) * MS_PER_DAY + 61 * 60_000  # 01:01
    salts.refresh_now()
    assert salts.days() == [day_text(DAY + 1), day_text(DAY + 2)]
    with pytest.raises(SaltUnavailable):
        salts(NOON)


def test_a_restart_after_the_grace_hour_does_not_load_yesterdays_salt(store: Store) -> None:
    book(store, Clock(NOON))
    late = book(store, Clock((DAY + 1) * MS_PER_DAY + 2 * 3_600_000))
    assert late.days() == [day_text(DAY + 1), day_text(DAY + 2)]


def test_an_expired_row_not_yet_merged_away_is_never_loaded() -> None:
    table = SaltTable()
    table.rows = [(day_text(DAY - 2), "0" * 64), (day_text(DAY - 5), "1" * 64)]
    assert book(table, Clock(NOON)).days() == [day_text(DAY), day_text(DAY + 1)]


def test_the_hot_path_never_queries_the_store() -> None:
    table = SaltTable()
    salts = book(table, Clock(NOON))
    queries = table.queries
    for n in range(100):
        visit(salts, NOON + n)
    assert table.queries == queries


def test_a_store_outage_shorter_than_a_day_is_invisible() -> None:
    table = SaltTable()
    clock = Clock(NOON)
    salts = book(table, clock)
    table.down = True
    clock.ms = (DAY + 1) * MS_PER_DAY + 2 * 3_600_000  # next day, 02:00, store still down
    with pytest.raises(StoreUnavailable):
        salts.refresh_now()
    assert visit(salts, clock.ms).vid  # tomorrow's salt was loaded a day ahead
    assert salts.days() == [day_text(DAY + 1)]  # yesterday forgotten although the store is down


def test_no_salt_for_the_day_is_unavailable_not_a_made_up_one() -> None:
    salts = SaltBook(SaltTable(), now_ms=Clock(NOON))
    assert not salts.ready
    with pytest.raises(SaltUnavailable):
        salts(NOON)


def test_the_pepper_changes_every_id() -> None:
    table = SaltTable()
    clock = Clock(NOON)
    assert book(table, clock, b"one")(NOON) != book(table, clock, b"two")(NOON)


def test_the_raw_ip_is_nowhere_in_the_published_message(store: Store) -> None:
    salts = book(store, Clock(NOON))
    for ip in (IP, "2001:db8::77"):
        published = encode_event(visit(salts, NOON, ip=ip))
        assert ip.encode() not in published  # as text
        assert ipaddress.ip_address(ip).packed not in published  # as bytes


def test_refresh_runs_off_the_event_loop() -> None:
    table = SaltTable()
    salts = SaltBook(table, now_ms=Clock(NOON))
    asyncio.run(salts.refresh())
    assert salts.ready


def test_day_numbers_and_text_round_trip() -> None:
    assert day_text(0) == "1970-01-01" and day_text(20_000) == "2024-10-04"
    assert day_number(day_text(DAY)) == DAY
