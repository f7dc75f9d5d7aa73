"""The API's kept days (services/api/day_sums.py, outbound_days.py) stay exact on a ClickHouse
server while three ``clickport sessionizer`` processes write into it from Kafka, and while
parts merge (``OPTIMIZE ... FINAL`` during and after the writes).

Events are published straight to the topic (days in the past cannot come through ingest,
which stamps receive time): sessions on two sites (UTC and +05:30, so periods have partial
days) started on each of the last ten days, some running over midnight, their events in
three waves so that days the API keeps keep receiving late events. While the waves land the
KPI and outbound endpoints are read over and over, and every answer must lie between a
direct uncached SQL computation made just before it and one made just after it (the figures
compared only grow as events land). Once everything is stored, and again after the merges
and after one more late event, every answer must equal the direct computation, and a
repeated request must be served from the kept days (``system.parts`` read, no sums) even
while another database on the same server is written to on the same days.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pathlib
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import msgspec
import pytest
import uncached
from helpers import event
from starlette.testclient import TestClient
from threads import free_port

from services.adapters.clickhouse_store import ClickHouseStore
from services.adapters.kafka_transport import KafkaTransport, create_topic
from services.api import queries
from services.api.day_sums import Sums
from services.api.kpis import kpis_of
from services.api.periods import Period, resolve_period
from services.core.event import Event, encode_event
from services.core.sites import add_site
from services.servers.api_server import build_api_app

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse_server, pytest.mark.timeout(600)]
ROOT = pathlib.Path(__file__).resolve().parents[2]
SITES = {"caches-utc.test": "UTC", "caches-ist.test": "Asia/Kolkata"}
SESSIONS_PER_SITE = 120
WAVES = 3
WORKERS = 3
PARTITIONS = 4
NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()
DOMAINS = [f"shop{n}.example" for n in range(6)]
# (from, to) dates in the site's zone: whole days before today, the same with today, the
# ten days of data; the previous period of each (KPIs) reaches further back.
RANGES = [(TODAY - dt.timedelta(days=6), TODAY), (TODAY - dt.timedelta(days=6),
          TODAY + dt.timedelta(days=1)), (TODAY - dt.timedelta(days=9), TODAY)]
GROWING_KPIS = ("visitors", "sessions", "pageviews", "conversions")


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def session_events(site: str, n: int, rng: random.Random) -> list[Event]:
    """One session: a pageview, then clicks, pageviews and engagement minutes apart; some
    start late in the evening and run over midnight (their clicks cross days)."""
    sid = f"cache{n:05d}" + "x" * 12
    day = TODAY - dt.timedelta(days=n % 10)
    midnight = dt.datetime.combine(day, dt.time(0), dt.UTC)
    late = n % 4 == 0 and day < TODAY
    start = midnight + dt.timedelta(hours=23, minutes=rng.randint(20, 58)) if late else (
        midnight + dt.timedelta(seconds=rng.randint(0, 20 * 3600)))
    ts = min(ms(start), ms(NOW) - 3_600_000) if day == TODAY else ms(start)
    started = dt.datetime.fromtimestamp(ts / 1000, dt.UTC).date()
    vid = started.toordinal() * 1000 + n % 40  # salted per day (I3): each day its own ids
    events = [event("pageview", sid=sid, site=site, ts=ts, vid=vid, url=f"https://{site}/")]
    for _ in range(rng.randint(2, 8)):
        ts += rng.choice([1_000, 60_000, 300_000, 900_000])
        roll = rng.random()
        if roll < 0.55:
            domain = rng.choice(DOMAINS)
            events.append(event("click", sid=sid, site=site, ts=ts, vid=vid,
                                click_domain=domain, click_url=f"https://{domain}/p",
                                click_text="go", click_kind="primary"))
        elif roll < 0.8:
            events.append(event("pageview", sid=sid, site=site, ts=ts, vid=vid,
                                url=f"https://{site}/next", path="/next"))
        else:
            events.append(event("engagement", sid=sid, site=site, ts=ts, vid=vid,
                                scroll=rng.randint(0, 100), visible_ms=rng.randint(0, 60_000)))
    return events


def waves() -> list[list[Event]]:
    """Every session's events split into WAVES consecutive segments, wave k holding segment
    k of each: a session's later events arrive after the API has kept its day."""
    rng = random.Random(6)
    out: list[list[Event]] = [[] for _ in range(WAVES)]
    for s, site in enumerate(SITES):
        for n in range(SESSIONS_PER_SITE):
            events = session_events(site, s * SESSIONS_PER_SITE + n, rng)
            size = -(-len(events) // WAVES)
            for k in range(WAVES):
                out[k] += events[k * size:(k + 1) * size]
    return out


class Recording:
    """The API's real Store, with the SQL of every query it runs kept (to see the cache)."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
        self.sql: list[str] = []

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self.sql.append(sql)
        return self.store.query(sql, params)

    def insert(self, table: str, rows: Any, *, dedup_token: str = "") -> None:
        self.store.insert(table, rows, dedup_token=dedup_token)

    def migrate(self) -> list[str]:
        return self.store.migrate()

    def describe(self) -> str:
        return self.store.describe()

    def close(self) -> None:
        self.store.close()


class Direct:
    """The uncached answers, straight from SQL."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    def kpis(self, site: str, period: Period) -> dict[str, Any]:
        row = self.store.query(uncached.KPI_SUMS, {"site": site, **period.bounds()})[0]
        return msgspec.to_builtins(kpis_of(Sums.of({k: v or 0 for k, v in row.items()})))

    def outbound(self, site: str, period: Period) -> dict[str, tuple[int, int]]:
        rows = self.store.query(uncached.OUTBOUND_DOMAINS, {"site": site, **period.bounds()})
        return {r["domain"]: (int(r["clicks"]), int(r["unique_clicks"])) for r in rows}

    def stored(self) -> tuple[int, int]:
        row = self.store.query("SELECT (SELECT count() FROM events FINAL) AS e, "
                               "(SELECT sum(events) FROM sessions FINAL) AS s")[0]
        return int(row["e"]), int(row["s"] or 0)


class Api:
    def __init__(self, client: TestClient, keys: dict[str, str]) -> None:
        self.client, self.keys = client, keys

    def get(self, path: str, site: str, first: dt.date, stop: dt.date) -> Any:
        response = self.client.get(path, headers={"x-api-key": self.keys[site]},
                                   params={"from": first.isoformat(), "to": stop.isoformat()})
        assert response.status_code == 200, response.text
        return response.json()

    def kpis(self, site: str, first: dt.date, stop: dt.date) -> tuple[Any, Any]:
        body = self.get("/api/kpis", site, first, stop)
        return body["results"], body["previous"]

    def outbound(self, site: str, first: dt.date, stop: dt.date) -> dict[str, tuple[int, int]]:
        body = self.get("/api/outbound-links", site, first, stop)
        return {r["domain"]: (r["clicks"], r["unique_clicks"]) for r in body["results"]}


def period_of(site: str, first: dt.date, stop: dt.date) -> Period:
    return resolve_period(None, first.isoformat(), stop.isoformat(), SITES[site], NOW)


def assert_between(before: Mapping[str, Any], got: Mapping[str, Any],
                   after: Mapping[str, Any], what: str) -> None:
    for name in set(before) | set(got) | set(after):
        low, value, high = (m.get(name, (0, 0)) for m in (before, got, after))
        assert all(lo <= v <= hi for lo, v, hi in zip(low, value, high, strict=True)), (
            f"{what} {name}: {value} not between {low} and {high}")


def check_bracketed(api: Api, direct: Direct, site: str, first: dt.date, stop: dt.date
                    ) -> None:
    """The answer lies between the direct figures read just before and just after it."""
    period = period_of(site, first, stop)
    previous = period.previous()
    before = (direct.kpis(site, period), direct.kpis(site, previous),
              direct.outbound(site, period))
    current, earlier = api.kpis(site, first, stop)
    links = api.outbound(site, first, stop)
    after = (direct.kpis(site, period), direct.kpis(site, previous),
             direct.outbound(site, period))
    what = f"{site} {first}..{stop}"

    def growing(figures: Mapping[str, Any]) -> dict[str, tuple[int]]:
        return {k: (figures[k],) for k in GROWING_KPIS}

    assert_between(growing(before[0]), growing(current), growing(after[0]), what)
    assert_between(growing(before[1]), growing(earlier), growing(after[1]), what + " previous")
    assert_between(before[2], links, after[2], what + " outbound")


def check_exact(api: Api, direct: Direct) -> None:
    for site in SITES:
        for first, stop in RANGES:
            period = period_of(site, first, stop)
            assert api.kpis(site, first, stop) == (direct.kpis(site, period),
                                                   direct.kpis(site, period.previous()))
            links = api.outbound(site, first, stop)
            assert list(links.items()) == list(direct.outbound(site, period).items())


@pytest.fixture
def server_store(clickhouse: Any) -> Iterator[tuple[str, ClickHouseStore]]:
    url = clickhouse.fresh_url("clickport_caches")
    store = ClickHouseStore(url)
    yield url, store
    store.close()


Procs = list[tuple[subprocess.Popen[bytes], int]]


def start_sessionizers(env: dict[str, str], logs: pathlib.Path) -> Procs:
    procs = []
    for n in range(WORKERS):
        port = free_port()
        with open(logs / f"sessionizer-{n}.log", "wb") as log:
            procs.append((subprocess.Popen(
                [sys.executable, "-m", "services.cli", "sessionizer", "--port", str(port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), port))
    try:
        for proc, port in procs:
            wait_until(lambda p=port: ready(p), 90, "a sessionizer process to be ready", proc)
    except BaseException:
        stop(procs)
        raise
    return procs


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(check: Any, seconds: float, what: str,
               proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert proc is None or proc.poll() is None, f"{what}: the process exited"
        assert time.monotonic() < deadline, f"timed out after {seconds}s waiting for {what}"
        time.sleep(0.2)


def stop(procs: Procs) -> None:
    for proc, _ in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc, _ in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def publish(bootstrap: str, topic: str, batches: list[list[Event]],
            read: threading.Event | None = None) -> None:
    """Publish the batches in order, each after the API has been read once more (``read``
    set by the reader), so that reads interleave with the writes."""
    async def run() -> None:
        transport = KafkaTransport(bootstrap, topic)
        await transport.start()
        try:
            for batch in batches:
                if read is not None:
                    await asyncio.to_thread(read.wait, 120)
                    read.clear()
                for item in batch:
                    await transport.publish(item.sid.encode(), encode_event(item))
        finally:
            await transport.stop()

    asyncio.run(run())


def chunks(wave: list[Event], parts: int) -> list[list[Event]]:
    size = -(-len(wave) // parts)
    return [wave[i * size:(i + 1) * size] for i in range(parts)]


def test_kept_days_stay_exact_while_three_sessionizer_processes_write(
        kafka: Any, clickhouse: Any, server_store: tuple[str, ClickHouseStore],
        tmp_path: pathlib.Path) -> None:
    url, store = server_store
    topic = f"clickport.caches.{uuid.uuid4().hex[:8]}"
    assert asyncio.run(create_topic(kafka.bootstrap, topic, PARTITIONS)) is True
    env = {**os.environ, "CLICKPORT_TRANSPORT": "kafka", "CLICKPORT_STORE": "clickhouse",
           "CLICKPORT_CLICKHOUSE_URL": url, "CLICKPORT_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "CLICKPORT_KAFKA_TOPIC": topic, "CLICKPORT_KAFKA_GROUP": f"g-{uuid.uuid4().hex[:8]}",
           "CLICKPORT_BATCH_MAX_SECONDS": "0.2", "CLICKPORT_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([sys.executable, "-m", "services.cli", "migrate"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=180)
    keys = {site: add_site(store, site, tz)[1] for site, tz in SITES.items()}
    # another database on the same server, written on the same days meanwhile
    neighbour = ClickHouseStore(clickhouse.fresh_url("clickport_neighbour"))
    neighbour.migrate()
    direct = Direct(store)
    batches = waves()
    total = sum(len(b) for b in batches)
    procs = start_sessionizers(env, tmp_path)
    recording = Recording(ClickHouseStore(url))
    try:
        with TestClient(build_api_app(recording)) as client:
            api = Api(client, keys)
            check_exact(api, direct)  # nothing written yet
            read = threading.Event()
            publisher = threading.Thread(target=publish, daemon=True, args=(
                kafka.bootstrap, topic, [c for b in batches for c in chunks(b, 4)], read))
            publisher.start()
            rounds = 0
            while publisher.is_alive() or direct.stored() != (total, total):
                for site in SITES:
                    for first, stop_day in RANGES:
                        check_bracketed(api, direct, site, first, stop_day)
                rounds += 1
                read.set()
                if rounds % 3 == 0:  # merges while the waves land
                    for table in ("sessions", "events"):
                        store.query(f"OPTIMIZE TABLE {table} FINAL")
                neighbour.insert("sessions", [neighbour_session(rounds)])
                assert rounds < 500, f"stored {direct.stored()} of {total} events"
            publisher.join()

            check_exact(api, direct)
            for table in ("sessions", "events"):
                store.query(f"OPTIMIZE TABLE {table} FINAL")
            check_exact(api, direct)
            assert_served_from_kept_days(api, recording, neighbour)

            late = late_event(store)  # a session of a kept day gets one more event
            publish(kafka.bootstrap, topic, [[late]])
            wait_until(lambda: direct.stored() == (total + 1, total + 1), 60,
                       "the late event to be stored")
            recording.sql.clear()
            check_exact(api, direct)
            assert queries.KPI_DAYS in recording.sql  # the changed day was summed again
    finally:
        stop(procs)
        neighbour.close()
    assert all(proc.returncode in (0, -15) for proc, _ in procs), [
        (tmp_path / f"sessionizer-{n}.log").read_text()[-2000:] for n in range(WORKERS)]


def neighbour_session(n: int) -> dict[str, Any]:
    started = ms(dt.datetime.combine(TODAY - dt.timedelta(days=3), dt.time(12), dt.UTC)) + n
    return {"site_id": next(iter(SITES)), "session_id": f"neighbour{n:013d}", "version": 1,
            "started_at": started, "last_event_at": started, "pageviews": 1, "events": 1}


def assert_served_from_kept_days(api: Api, recording: Recording,
                                 neighbour: ClickHouseStore) -> None:
    """A second request over whole days reads the part lists only, although another
    database on the server has just been written on those days."""
    site, (first, stop_day) = next(iter(SITES)), RANGES[0]
    api.kpis(site, first, stop_day)
    api.outbound(site, first, stop_day)
    neighbour.insert("sessions", [neighbour_session(10_000)])
    neighbour.insert("events", [{"site_id": site, "session_id": "n" * 22, "name": "click",
                                 "event_id": uuid.uuid4().hex, "click_domain": DOMAINS[0],
                                 "timestamp": neighbour_session(0)["started_at"]}])
    recording.sql.clear()
    api.kpis(site, first, stop_day)
    assert recording.sql == [queries.DAY_PARTS]
    recording.sql.clear()
    api.outbound(site, first, stop_day)
    assert queries.DAY_PARTS in recording.sql
    assert not {queries.OUTBOUND_DAY_COUNTS, queries.OUTBOUND_DAY_CROSSING,
                queries.OUTBOUND_DOMAINS} & set(recording.sql)


def late_event(store: ClickHouseStore) -> Event:
    """One more click for a stored session that started three days ago."""
    site = next(iter(SITES))
    day = TODAY - dt.timedelta(days=3)
    row = store.query(
        "SELECT session_id, visitor_id, toUnixTimestamp64Milli(last_event_at) AS last_ms "
        "FROM sessions FINAL WHERE site_id = {s:String} AND toDate(started_at) = {d:Date} "
        "AND session_id LIKE 'cache%' ORDER BY session_id LIMIT 1",
        {"s": site, "d": day.isoformat()})[0]
    return event("click", sid=row["session_id"], site=site, ts=int(row["last_ms"]) + 1_000,
                 vid=int(row["visitor_id"]), click_domain="late.example",
                 click_url="https://late.example/", click_text="late", click_kind="primary")


NAMES_ONLY = ("SELECT name FROM system.parts WHERE database = currentDatabase() "
              "AND table = {t:String} AND active AND partition = {d:String} ORDER BY name")


def test_a_table_made_again_under_a_running_api_is_read_again(
        server_store: tuple[str, ClickHouseStore]) -> None:
    """On a server another client can drop a table and create it again (a migration that
    rebuilds it, a restore, an operator) while ``clickport api`` runs. The new table numbers
    its parts from 1 again, so a day's part names come back holding other rows; the kept
    day must not be served for them."""
    url, store = server_store
    store.migrate()
    site = next(iter(SITES))
    key = add_site(store, site)[1]
    day = TODAY - dt.timedelta(days=3)
    noon = ms(dt.datetime.combine(day, dt.time(12), dt.UTC))

    def write(n: int, pageviews: int, domain: str) -> None:
        store.insert("sessions", [{"site_id": site, "session_id": f"again{i:017d}",
                                   "version": 1, "started_at": noon + i, "visitor_id": i,
                                   "last_event_at": noon + i, "pageviews": pageviews,
                                   "events": 1} for i in range(n)])
        store.insert("events", [{"site_id": site, "session_id": f"again{i:017d}",
                                 "name": "click", "event_id": uuid.uuid4().hex,
                                 "timestamp": noon + i, "click_domain": domain,
                                 "first_click_at": noon + i, "is_first_click": 1}
                                for i in range(n)])

    def make_again() -> None:
        """The same tables, made again empty (their parts numbered from 1 again)."""
        for table in ("sessions", "events"):
            store.query(f"CREATE TABLE {table}_again AS {table}")
            store.query(f"DROP TABLE {table} SYNC")
            store.query(f"RENAME TABLE {table}_again TO {table}")

    make_again()  # so that both tables begin alike (the migrations' mutations take numbers)
    write(3, 2, "before.example")
    names = {t: store.query(NAMES_ONLY, {"t": t, "d": day.isoformat()})
             for t in ("sessions", "events")}
    direct = Direct(store)
    with TestClient(build_api_app(ClickHouseStore(url))) as client:
        api = Api(client, {site: key})
        first, stop_day = day - dt.timedelta(days=1), day + dt.timedelta(days=1)
        period = period_of(site, first, stop_day)
        assert api.kpis(site, first, stop_day)[0] == direct.kpis(site, period)
        assert api.outbound(site, first, stop_day) == {"before.example": (3, 3)}

        make_again()
        write(5, 4, "after.example")
        assert names == {t: store.query(NAMES_ONLY, {"t": t, "d": day.isoformat()})
                         for t in ("sessions", "events")}, "the part names did not come back"

        assert api.kpis(site, first, stop_day)[0] == direct.kpis(site, period)
        assert direct.kpis(site, period)["pageviews"] == 20
        assert api.outbound(site, first, stop_day) == {"after.example": (5, 5)}
