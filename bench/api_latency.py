"""Benchmark 5, query API: p50/p95 of ``GET /api/outbound-links``, ``/api/kpis`` and a
session timeline with 1 M and 10 M events of one site (quick: 100 k and 300 k), in chDB and,
side by side, on a ClickHouse server holding the same data.

Data (a child on core 1, in chDB itself: ``INSERT ... SELECT`` from ``numbers()``): N/5
sessions of five events each, started uniformly over the last 29 days (UTC); half the
sessions click twice (so ~20 % of events are clicks) on ~500 destination domains with a
skewed (cubic) popularity, the others view three pages; engagement events carry scroll and
visible time. Click rows carry the first-click marks the sessionizer gives (migration 008;
the generator checks them against ``uniqExact``), and the goal the clicks completed has its
row. Every session has its final row, and 30 % of them also an older version in a
separate insert (versions, as the sessionizer writes them), so ``FINAL`` has work. The
generator then waits until chDB's background merges are done (they would otherwise run on
the API's core during the measurement), and merges each finished day into one part, which a
running store does by itself an hour after a day ends (migration 006); today keeps its
parts and its older session versions.

The same SQL, with the same end instant, then generates the same rows in a database of a
ClickHouse server (tests/clickhouse_server.py) pinned to core 1, where chDB's engine threads
run in the chDB case; the generator waits for that database's merges and merges its
finished days in the same way.

Measurement: the API as ``clickport api`` builds it (`bench.apps.api_app`) under uvicorn on
core 1, one process on chDB and one on a `ClickHouseStore` on the server; a client on core 0
sends one request at a time, warm-up first (each process's first outbound and KPI requests
are reported on their own), then per iteration each endpoint (the timeline of a different
session each time) on each store in turn, each request followed by ``/bench/engine``, the
same SQL run through the Store from the API process: the engine's share (on the server, the
driver and the loopback round trips are in it too).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import pathlib
import statistics
import sys
import time
from typing import Any

import httpx

from bench.clickhouse import drop_database, local_server
from bench.common import (
    PYTHON,
    SERVER_CORE,
    UVICORN_FLAGS,
    Context,
    Figure,
    Server,
    child_env,
    free_port,
    run_json,
    say,
)
from bench.workload import SITE

DAY_MS = 86_400_000

EVENTS_SQL = """
INSERT INTO events (site_id, timestamp, name, session_id, event_id, visitor_id, url, path,
    referrer, referrer_source, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
    device, browser, os, country, click_domain, scroll_depth, visible_ms, custom_name, goals,
    meta_keys, meta_values, first_click_at, is_first_click)
SELECT
    {site:String} AS site_id,
    fromUnixTimestamp64Milli(toInt64({base:Int64} + cityHash64(s, 1) % {span:Int64} + i * 20000),
                             'UTC') AS timestamp,
    multiIf(i = 0, 'pageview', i IN (1, 3), if(h < 50, 'click', 'pageview'), 'engagement')
        AS name,
    substring(replaceRegexpAll(base64Encode(concat(reinterpretAsString(cityHash64(s, 2)),
        reinterpretAsString(cityHash64(s, 3)))), '[+/=]', 'x'), 1, 22) AS session_id,
    generateUUIDv4(number) AS event_id,
    cityHash64(intDiv(s, 2), 7) AS visitor_id,
    concat('https://{site_raw}/p/', toString(cityHash64(s, i, 6) % 300)) AS url,
    concat('/p/', toString(cityHash64(s, i, 6) % 300)) AS path,
    if(i = 0 AND h % 3 = 0, 'https://www.google.com/', '') AS referrer,
    if(i = 0 AND h % 3 = 0, 'Google', 'direct') AS referrer_source,
    '' AS utm_source, '' AS utm_medium, '' AS utm_campaign, '' AS utm_term, '' AS utm_content,
    ['desktop', 'mobile', 'tablet'][1 + h % 3] AS device,
    ['Chrome', 'Safari', 'Firefox', 'Edge'][1 + h % 4] AS browser,
    ['Windows', 'macOS', 'iOS', 'Android', 'Linux'][1 + h % 5] AS os,
    ['US', 'DE', 'GB', 'FR', 'IN', ''][1 + h % 6] AS country,
    if(name = 'click', d, '') AS click_domain,
    if(name = 'engagement', toUInt8(cityHash64(number, 8) % 101), 0) AS scroll_depth,
    if(name = 'engagement', toUInt32(cityHash64(number, 9) % 60000), 0) AS visible_ms,
    '' AS custom_name,
    if(name = 'click' AND h < 20, ['g1'], []) AS goals,
    if(name = 'click', ['click_url', 'click_text', 'asin', 'click_kind'], []) AS meta_keys,
    if(name = 'click', [concat('https://www.', click_domain, '/product/',
        toString(cityHash64(number, 5) % 100000)), 'See the deal', '', 'primary'], [])
        AS meta_values,
    -- a session's second click (i = 3) repeats its first one's domain or is a first itself
    multiIf(name != 'click', toDateTime64(0, 3, 'UTC'),
            i = 3 AND d = d_before, timestamp - toIntervalMillisecond(40000),
            timestamp) AS first_click_at,
    toUInt8(name = 'click' AND NOT (i = 3 AND d = d_before)) AS is_first_click
FROM (SELECT number, intDiv(number, 5) AS s, number % 5 AS i, cityHash64(intDiv(number, 5)) % 100
      AS h, {domain} AS d, {domain_before} AS d_before
      FROM numbers({first_event:UInt64}, {events:UInt64}))
"""
# ~500 destination domains with a cubic popularity; d_before: the domain of the row two before
DOMAIN_SQL = ("concat('shop', toString(toUInt32(pow((cityHash64({n}, 4) % 1000000) / 1000000.0, "
              "3) * 500)), '.example')")

SESSIONS_SQL = """
INSERT INTO sessions (site_id, started_at, session_id, version, visitor_id, last_event_at,
    pageviews, events, entry_page, exit_page, referrer, referrer_source, utm_source,
    utm_medium, utm_campaign, device, browser, os, country, max_scroll, visible_ms, duration,
    has_clicked, has_converted, goals, is_bounce)
SELECT
    {site:String} AS site_id,
    fromUnixTimestamp64Milli(toInt64({base:Int64} + cityHash64(s, 1) % {span:Int64}), 'UTC')
        AS started_at,
    substring(replaceRegexpAll(base64Encode(concat(reinterpretAsString(cityHash64(s, 2)),
        reinterpretAsString(cityHash64(s, 3)))), '[+/=]', 'x'), 1, 22) AS session_id,
    {version:UInt64} AS version,
    cityHash64(intDiv(s, 2), 7) AS visitor_id,
    started_at + toIntervalSecond(80) AS last_event_at,
    if(h < 50, 1, 3) AS pageviews, 5 AS events,
    concat('/p/', toString(cityHash64(s, 0, 6) % 300)) AS entry_page,
    concat('/p/', toString(cityHash64(s, 3, 6) % 300)) AS exit_page,
    if(h % 3 = 0, 'https://www.google.com/', '') AS referrer,
    if(h % 3 = 0, 'Google', 'direct') AS referrer_source,
    '' AS utm_source, '' AS utm_medium, '' AS utm_campaign,
    ['desktop', 'mobile', 'tablet'][1 + h % 3] AS device,
    ['Chrome', 'Safari', 'Firefox', 'Edge'][1 + h % 4] AS browser,
    ['Windows', 'macOS', 'iOS', 'Android', 'Linux'][1 + h % 5] AS os,
    ['US', 'DE', 'GB', 'FR', 'IN', ''][1 + h % 6] AS country,
    toUInt8(h) AS max_scroll, toUInt64(h * 3000) AS visible_ms, toUInt32(h * 3) AS duration,
    toUInt8(h < 50) AS has_clicked, toUInt8(h < 20) AS has_converted,
    if(h < 20, ['g1'], []) AS goals, toUInt8(h >= 95) AS is_bounce
FROM (SELECT number AS s, cityHash64(number) % 100 AS h
      FROM numbers({first_session:UInt64}, {sessions:UInt64}))
WHERE {all:UInt8} OR cityHash64(s, 10) % 10 < 3
"""


def generate(directory: pathlib.Path, events: int, sites: int = 1,
             clickhouse_url: str = "", now_ms: int = 0) -> dict[str, Any]:
    """``events`` in all, split evenly over ``sites`` sites: SITE (the one measured) and
    ``site2.example``... with sessions of their own; in chDB in ``directory``, or with the
    same SQL in the database of ``clickhouse_url`` on a ClickHouse server."""
    from services.adapters.chdb_store import ChdbStore
    from services.adapters.clickhouse_store import ClickHouseStore
    from services.core.sites import add_site
    from services.core.store import Store

    store: Store = (ClickHouseStore(clickhouse_url) if clickhouse_url
                    else ChdbStore(directory / "chdb"))
    store.migrate()
    base = (now_ms or int(time.time() * 1000)) - 29 * DAY_MS
    span = 29 * DAY_MS - 3_600_000
    started = time.perf_counter()
    per_site = events // sites // 5 * 5
    sessions = per_site // 5
    key = ""
    for n in range(sites):
        site = SITE if n == 0 else f"site{n + 1}.example"
        _, site_key = add_site(store, site)
        key = key or site_key
        # the goal the generated clicks completed ('g1'), as the API created it: the timeline
        # names it (an id with no goal row would make every such timeline read the goals)
        store.insert("goals", [{
            "site_id": site, "goal_id": "g1", "name": "Shop click", "type": "click",
            "conditions": '[{"field": "domain", "operator": "contains", "value": "shop"}]',
            "logic": "and", "is_conversion": 1, "created_at": base, "version": 1,
            "deleted": 0}])
        common = {"site": site, "base": base, "span": span}
        events_sql = (EVENTS_SQL.replace("{site_raw}", site)
                      .replace("{domain}", DOMAIN_SQL.format(n="number"))
                      .replace("{domain_before}", DOMAIN_SQL.format(n="number - 2")))
        store.query(events_sql, {**common, "first_event": n * per_site, "events": per_site})
        # the older versions first (as they were written first), then every session's last
        for version, every in ((3, 0), (5, 1)):
            store.query(SESSIONS_SQL, {**common, "first_session": n * sessions,
                                       "sessions": sessions, "version": version, "all": every})
        if sites > 1:
            print(f"site {n + 1}/{sites} written", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    # Let the background merges of the fresh parts finish here, so that they do not run on
    # the API's core while it is measured (a long-running store has merged its old parts).
    settle_started = time.perf_counter()
    quiet = 0
    while quiet < 3 and time.perf_counter() - settle_started < 300 * sites:
        busy = int(store.query("SELECT count() AS n FROM system.merges "
                               "WHERE database = currentDatabase()")[0]["n"])
        quiet = 0 if busy else quiet + 1
        time.sleep(1.0)
    # Each finished day is then merged into one part, as min_age_to_force_merge_seconds
    # (migration 006) does once a day's partition has been idle for an hour; today keeps
    # its parts and its older session versions, as in a store that is being written to.
    today = dt.datetime.now(dt.UTC).date().isoformat()
    for table in ("events", "sessions"):
        for row in store.query("SELECT DISTINCT partition, partition_id FROM system.parts "
                               "WHERE active AND database = currentDatabase() AND "
                               "table = {t:String}", {"t": table}):
            if row["partition"] < today and row["partition_id"].isdigit():
                store.query(f"OPTIMIZE TABLE {table} PARTITION ID '{row['partition_id']}' FINAL")
    parts = {r["table"]: int(r["n"]) for r in store.query(
        "SELECT table, count() AS n FROM system.parts WHERE active AND database = "
        "currentDatabase() AND table IN ('events', 'sessions') GROUP BY table")}
    counts = store.query("SELECT (SELECT count() FROM events) AS events, "
                         "(SELECT count() FROM sessions) AS session_rows, "
                         "(SELECT countIf(name = 'click') FROM events) AS clicks, "
                         "(SELECT uniqExact(click_domain) FROM events WHERE name = 'click') "
                         "AS domains")[0]
    _check_unique_clicks(store)
    step = max(1, sessions // 97)
    sids = [r["session_id"] for r in store.query(
        "SELECT session_id FROM sessions WHERE site_id = {site:String} AND version = 5 AND "
        "cityHash64(session_id) % {step:UInt64} = 0 LIMIT 200", {"site": SITE, "step": step})]
    store.close()
    return {"key": key, "sids": sids, "generate_seconds": seconds,
            "merge_wait_seconds": time.perf_counter() - settle_started, "parts": parts,
            "counts": {k: int(v) for k, v in counts.items()}}


def _check_unique_clicks(store: Any) -> None:
    """The generated first-click marks must give the report what hashing every session id
    gives (the API's tests prove the rule; this proves the generator's marks)."""
    from services.api import queries

    now = dt.datetime.now(dt.UTC)
    fmt = "%Y-%m-%d %H:%M:%S"
    for days in (30, 7, 1):
        params = {"site": SITE, "start": (now - dt.timedelta(days=days)).strftime(fmt),
                  "end": now.strftime(fmt)}
        marked = store.query(queries.OUTBOUND_DOMAINS, params)
        hashed = store.query(queries.OUTBOUND_DOMAINS.replace(
            queries.UNIQUE_DOMAIN_CLICKS, "uniqExact(session_key)"), params)
        if marked != hashed:
            raise RuntimeError(f"first-click marks disagree with uniqExact over {days} days")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


STORES = {"chdb": "chDB", "server": "ClickHouse server"}


class Target:
    """One Store's side of a measurement: its generated data, the API process on it, and
    the latencies measured through it."""

    def __init__(self, ctx: Context, store: str, events: int, sites: int, gen: dict[str, Any],
                 env: dict[str, str]) -> None:
        self.store, self.gen = store, gen
        port = free_port()
        self.server = Server(f"api-{store}-{events}-{sites}",
                             [PYTHON, "-m", "uvicorn", "--factory", "bench.apps:api_app",
                              "--port", str(port), *UVICORN_FLAGS],
                             port, env=env, log_dir=ctx.scratch("logs"), ready_path="/healthz")
        self.client = httpx.Client(base_url=self.server.base, timeout=120,
                                   headers={"x-api-key": gen["key"]})
        self.sids: list[str] = gen["sids"]
        self.api: dict[str, list[float]] = {"outbound": [], "kpis": [], "timeline": []}
        self.engine: dict[str, list[float]] = {"outbound": [], "kpis": [], "timeline": []}
        self.cold: dict[str, float] = {}
        self.answers: dict[str, Any] = {}

    def get(self, endpoint: str, sid: str) -> float:
        path = {"outbound": "/api/outbound-links?period=30d", "kpis": "/api/kpis?period=30d",
                "timeline": f"/api/sessions/{sid}/timeline"}[endpoint]
        started = time.perf_counter()
        response = self.client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{self.store} {path}: {response.status_code} "
                               f"{response.text[:300]}")
        return elapsed

    def eng(self, endpoint: str, sid: str) -> float:
        response = self.client.get("/bench/engine", params={"endpoint": endpoint, "site": SITE,
                                                            "sid": sid})
        return float(response.json()["ms"])

    def warm_up(self) -> None:
        # The first outbound and KPI requests of a fresh API process read every day of their
        # periods; later ones reuse the finished days (services/api/outbound_days.py and
        # day_sums.py). Reported on their own. The first request also fills the key cache.
        self.cold = {"outbound": self.get("outbound", self.sids[0]),
                     "kpis": self.get("kpis", self.sids[0])}
        for i in range(3):  # warm-up: key cache, marks, page cache
            for endpoint in self.api:
                self.get(endpoint, self.sids[-1 - i])
                self.eng(endpoint, self.sids[-1 - i])
        self.answers = {
            "outbound": self.client.get("/api/outbound-links?period=30d").json()["results"],
            "kpis": self.client.get("/api/kpis?period=30d").json()["results"]}

    def result(self, events: int, sites: int) -> dict[str, Any]:
        return {"events": events, "sites": sites, "store": self.store, "api": self.api,
                "engine": self.engine, "gen": self.gen,
                "domains_returned": len(self.answers["outbound"]),
                "kpis": self.answers["kpis"], "kpis_cold": self.cold["kpis"],
                "outbound_cold": self.cold["outbound"]}


def measure(ctx: Context, events: int, sites: int = 1,
            clickhouse: Any = None) -> dict[str, dict[str, Any]]:
    """The API on ``events`` generated events in chDB and, given a ClickHouse server, the
    same events (same SQL, same clock) on the server; the two measured interleaved, request
    by request. Results per store."""
    directory = ctx.scratch(f"api-{events}-{sites}")
    now_ms = int(time.time() * 1000)  # both stores' data end at the same instant
    argv = [PYTHON, "-m", "bench.api_latency", "--dir", str(directory), "--events",
            str(events), "--sites", str(sites), "--now-ms", str(now_ms)]
    database = f"bench_api_{size_name(events)}_{sites}".lower()
    targets = []
    for store in ("chdb", "server") if clickhouse is not None else ("chdb",):
        url = clickhouse.url(database) if store == "server" else ""
        say(f"api: generating {events:,} events of {sites} site(s) in {STORES[store]} "
            f"(child on core 1)")
        gen = run_json(argv + (["--clickhouse-url", url] if url else []))
        say(f"api: generated in {gen['generate_seconds']:.1f}s, merges settled after "
            f"{gen['merge_wait_seconds']:.0f}s: {gen['counts']}, active parts {gen['parts']}")
        env = (child_env(BENCH_CLICKHOUSE_URL=url) if url
               else child_env(BENCH_DATA_DIR=str(directory)))
        targets.append(Target(ctx, store, events, sites, gen, env))
    n = ctx.profile.api_requests
    with contextlib.ExitStack() as stack:
        for target in targets:
            stack.enter_context(target.server)
            stack.enter_context(target.client)
        for target in targets:
            target.warm_up()
        for i in range(n):
            for endpoint in ("outbound", "kpis", "timeline"):
                for target in targets:  # the stores in turn, request by request
                    sid = target.sids[i % len(target.sids)]
                    target.api[endpoint].append(target.get(endpoint, sid))
                    target.engine[endpoint].append(target.eng(endpoint, sid))
    if clickhouse is not None:
        drop_database(clickhouse, database)
    out = {t.store: t.result(events, sites) for t in targets}
    for target in targets:
        summary = {e: (statistics.median(v), pct(v, 0.95)) for e, v in target.api.items()}
        say(f"api {events:,} ({sites} site(s)) on {STORES[target.store]}: " + "; ".join(
            f"{e} p50 {a:.1f} ms p95 {b:.1f} ms" for e, (a, b) in summary.items()))
    if len(targets) > 1:
        same = targets[0].answers == targets[1].answers
        out["server"]["same_answers_as_chdb"] = same
        say(f"api {events:,}: the two stores answer outbound and KPIs "
            f"{'identically' if same else 'DIFFERENTLY'}")
    return out


# The ClickHouse server's core in this benchmark: the API's, where chDB's engine threads are
# (bench/README.md, 5 says why).
SERVER_STORE_CORE = SERVER_CORE


def run(ctx: Context) -> list[Figure]:
    sizes = ctx.profile.api_sizes
    with local_server(ctx.scratch("api-clickhouse"), SERVER_STORE_CORE) as clickhouse:
        results = [measure(ctx, n, clickhouse=clickhouse) for n in sizes]
    cmd = ctx.command("api")
    return (figures([r["chdb"] for r in results], cmd, "api", sizes[-1])
            + figures([r["server"] for r in results], cmd, "api.server", sizes[-1],
                      f", ClickHouse server on core {SERVER_STORE_CORE}"))


TARGETS = {"outbound": 100.0, "kpis": 100.0, "timeline": 30.0}
LABELS = {"outbound": "GET /api/outbound-links?period=30d", "kpis": "GET /api/kpis?period=30d",
          "timeline": "GET /api/sessions/{id}/timeline"}


def size_name(events: int) -> str:
    return f"{events / 1e6:g}M" if events >= 1e6 else f"{events // 1000}k"


def figures(results: list[dict[str, Any]], cmd: str, prefix: str,
            judged: int, on: str = "") -> list[Figure]:
    """The figures of measured sets; the targets are judged at ``judged`` events of one
    site, and shown for information on the others. ``on``: where the Store was, if not
    chDB."""
    out = []
    for r in results:
        sites = int(r["sites"])
        size = size_name(r["events"]) + (f"_{sites}sites" if sites > 1 else "")
        where = (f"{size_name(r['events'] // sites)} events of one site among {sites} "
                 f"({size_name(r['events'])} in the store)" if sites > 1
                 else f"{size_name(r['events'])} events") + on
        probe = ("same SQL on the Store in-process (p95)" if not on else
                 "same SQL through the Store from the API process (p95)")
        for endpoint, ms in r["api"].items():
            is_judged = r["events"] == judged and sites == 1
            eng = r["engine"][endpoint]
            p95s = [pct(ms, 0.95)]
            out.append(Figure(
                id=f"{prefix}.{endpoint}.{size}.p95", stage="5 API",
                name=f"{LABELS[endpoint]} p95, {where} "
                     f"({r['gen']['counts']['session_rows']:,} session rows in all)",
                unit="ms", runs=p95s,
                baseline_name=probe,
                baseline_runs=[pct(eng, 0.95)], ratios=[pct(eng, 0.95) / p95s[0]],
                target=(f"<= {TARGETS[endpoint]:.0f} ms p95" + (
                    "" if is_judged else f" (at {size_name(judged)} of one site)")),
                judge=f"value <= {TARGETS[endpoint]}" if is_judged else "", command=cmd,
                note=(f"p50 {statistics.median(ms):.1f} ms (engine {statistics.median(eng):.1f}"
                      f" ms) over {len(ms)} requests, min {min(ms):.1f} max {max(ms):.1f} ms"),
                extra={"samples_ms": ms, "engine_ms": eng}))
        out.append(Figure(
            id=f"{prefix}.outbound_first.{size}", stage="5 API",
            name=f"GET /api/outbound-links?period=30d, first request of a fresh API process, "
                 f"{where} (no finished day kept yet: every day of the period read)",
            unit="ms", runs=[r["outbound_cold"]], target="(information)", command=cmd,
            note="the process's first request (key cache cold too)"))
        out.append(Figure(
            id=f"{prefix}.kpis_first.{size}", stage="5 API",
            name=f"GET /api/kpis?period=30d, first request of a fresh API process, {where}"
                 " (no finished day kept yet: every day of both periods summed)",
            unit="ms", runs=[r["kpis_cold"]], target="(information)", command=cmd,
            note="one request after one outbound request (key and page caches warm)"))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=pathlib.Path, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--sites", type=int, default=1)
    parser.add_argument("--clickhouse-url", default="", help="a ClickHouse server, not chDB")
    parser.add_argument("--now-ms", type=int, default=0, help="the data's end (default: now)")
    args = parser.parse_args()
    print(f"generating {args.events} events", file=sys.stderr, flush=True)
    print(json.dumps(generate(args.dir, args.events, args.sites, args.clickhouse_url,
                              args.now_ms)))
