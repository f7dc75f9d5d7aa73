"""Benchmark 5, query API: p50/p95 of ``GET /api/outbound-links``, ``/api/kpis`` and a
session timeline with 1 M and 10 M events of one site in chDB (quick: 100 k and 300 k).

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

Measurement: the API as ``clickport api`` builds it (`bench.apps.api_app`) under uvicorn on
core 1; a client on core 0 sends one request at a time, warm-up first, then per iteration
each endpoint (the timeline of a different session each time) interleaved with
``/bench/engine``, the same SQL run on the Store in-process: the engine's share.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pathlib
import statistics
import sys
import time
from typing import Any

import httpx

from bench.common import (
    PYTHON,
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


def generate(directory: pathlib.Path, events: int, sites: int = 1) -> dict[str, Any]:
    """``events`` in all, split evenly over ``sites`` sites: SITE (the one measured) and
    ``site2.example``... with sessions of their own."""
    from services.adapters.chdb_store import ChdbStore
    from services.core.sites import add_site

    store = ChdbStore(directory / "chdb")
    store.migrate()
    now_ms = int(time.time() * 1000)
    base = now_ms - 29 * DAY_MS
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
        busy = int(store.query("SELECT count() AS n FROM system.merges")[0]["n"])
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
        "SELECT table, count() AS n FROM system.parts WHERE active AND "
        "table IN ('events', 'sessions') GROUP BY table")}
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


def measure(ctx: Context, events: int, sites: int = 1) -> dict[str, Any]:
    directory = ctx.scratch(f"api-{events}-{sites}")
    say(f"api: generating {events:,} events of {sites} site(s) in chDB (child on core 1)")
    gen = run_json([PYTHON, "-m", "bench.api_latency", "--dir", str(directory), "--events",
                    str(events), "--sites", str(sites)])
    say(f"api: generated in {gen['generate_seconds']:.1f}s, merges settled after "
        f"{gen['merge_wait_seconds']:.0f}s: {gen['counts']}, active parts {gen['parts']}")
    port = free_port()
    server = Server(f"api-{events}", [PYTHON, "-m", "uvicorn", "--factory",
                                      "bench.apps:api_app", "--port", str(port),
                                      *UVICORN_FLAGS],
                    port, env=child_env(BENCH_DATA_DIR=str(directory)),
                    log_dir=ctx.scratch("logs"), ready_path="/healthz")
    sids: list[str] = gen["sids"]
    api: dict[str, list[float]] = {"outbound": [], "kpis": [], "timeline": []}
    engine: dict[str, list[float]] = {"outbound": [], "kpis": [], "timeline": []}
    n = ctx.profile.api_requests
    with server, httpx.Client(base_url=server.base, timeout=120,
                              headers={"x-api-key": gen["key"]}) as client:
        def get(endpoint: str, sid: str) -> float:
            path = {"outbound": "/api/outbound-links?period=30d", "kpis": "/api/kpis?period=30d",
                    "timeline": f"/api/sessions/{sid}/timeline"}[endpoint]
            started = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
            return elapsed

        def eng(endpoint: str, sid: str) -> float:
            response = client.get("/bench/engine", params={"endpoint": endpoint, "site": SITE,
                                                           "sid": sid})
            return float(response.json()["ms"])

        # The first outbound and KPI requests of a fresh API process read every day of their
        # periods; later ones reuse the finished days (services/api/outbound_days.py and
        # day_sums.py). Reported on their own. The first request also fills the key cache.
        outbound_cold = get("outbound", sids[0])
        kpis_cold = get("kpis", sids[0])
        for i in range(3):  # warm-up: key cache, marks, page cache
            for endpoint in api:
                get(endpoint, sids[-1 - i])
                eng(endpoint, sids[-1 - i])
        body = client.get("/api/outbound-links?period=30d").json()
        kpis = client.get("/api/kpis?period=30d").json()["results"]
        for i in range(n):
            sid = sids[i % len(sids)]
            for endpoint in api:
                api[endpoint].append(get(endpoint, sid))
                engine[endpoint].append(eng(endpoint, sid))
    summary = {e: (statistics.median(v), pct(v, 0.95)) for e, v in api.items()}
    say(f"api {events:,} ({sites} site(s)): " + "; ".join(f"{e} p50 {a:.1f} ms p95 {b:.1f} ms"
                                       for e, (a, b) in summary.items()))
    return {"events": events, "sites": sites, "api": api, "engine": engine, "gen": gen,
            "domains_returned": len(body["results"]), "kpis": kpis, "kpis_cold": kpis_cold,
            "outbound_cold": outbound_cold}


def run(ctx: Context) -> list[Figure]:
    sizes = ctx.profile.api_sizes
    return figures([measure(ctx, n) for n in sizes], ctx.command("api"), "api", sizes[-1])


TARGETS = {"outbound": 100.0, "kpis": 100.0, "timeline": 30.0}
LABELS = {"outbound": "GET /api/outbound-links?period=30d", "kpis": "GET /api/kpis?period=30d",
          "timeline": "GET /api/sessions/{id}/timeline"}


def size_name(events: int) -> str:
    return f"{events / 1e6:g}M" if events >= 1e6 else f"{events // 1000}k"


def figures(results: list[dict[str, Any]], cmd: str, prefix: str,
            judged: int) -> list[Figure]:
    """The figures of measured sets; the targets are judged at ``judged`` events of one
    site, and shown for information on the others."""
    out = []
    for r in results:
        sites = int(r["sites"])
        size = size_name(r["events"]) + (f"_{sites}sites" if sites > 1 else "")
        where = (f"{size_name(r['events'] // sites)} events of one site among {sites} "
                 f"({size_name(r['events'])} in the store)" if sites > 1
                 else f"{size_name(r['events'])} events")
        for endpoint, ms in r["api"].items():
            is_judged = r["events"] == judged and sites == 1
            eng = r["engine"][endpoint]
            p95s = [pct(ms, 0.95)]
            out.append(Figure(
                id=f"{prefix}.{endpoint}.{size}.p95", stage="5 API",
                name=f"{LABELS[endpoint]} p95, {where} "
                     f"({r['gen']['counts']['session_rows']:,} session rows in all)",
                unit="ms", runs=p95s,
                baseline_name="same SQL on the Store in-process (p95)",
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
    args = parser.parse_args()
    print(f"generating {args.events} events", file=sys.stderr, flush=True)
    print(json.dumps(generate(args.dir, args.events, args.sites)))
