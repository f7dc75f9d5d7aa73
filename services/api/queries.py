"""The API's SQL. Every value is a bound ``{name:Type}`` parameter; only fixed fragments
chosen by code are ever joined into the text. Every query starts its WHERE with the site and,
for events and sessions, the time range: the first columns of the tables' sort keys. The
outbound example URL and text come from one row, the domain's latest click (ties broken by
event id), so they belong together."""

from __future__ import annotations

# Outbound links (A2) in two steps. The first counts per domain (or URL): clicks, distinct
# sessions and the time of the latest click. The second reads only the clicks at those
# latest times, on their days, and keeps per key the one with the greatest (timestamp,
# event_id): the key's latest click, whose URL and text are its example. A max over
# (timestamp, event_id) tuples in the first step would cost more than the counts.
#
# Distinct sessions per URL: uniqExact over session_key (the SipHash-128 of session_id that
# uniqExact would compute, stored at insert: migration 006). Per domain, from the first-click
# marks (migration 008): every (session, domain) pair with a click in the period has either
# its first click in the period (is_first_click, counted once) or not, and then all its
# clicks carry that outside first_click_at, so their distinct sessions are the rest. The
# rest also takes the untracked clicks (first_click_at 1 ms: their pairs have no first click
# marked at all). Only sessions that cross the period's edges, or are untracked, are hashed.
# A click row without marks (first_click_at 0: written before 008, or by an older release
# during a rollback) may share its pair with marked rows, so the rule cannot count it: the
# query reports them (``unmarked``) and such a period is counted by OUTBOUND_DOMAINS_HASHED.
_UNIQUE_SESSIONS = "uniqExact(session_key)"
UNIQUE_DOMAIN_CLICKS = """countIf(is_first_click = 1) + uniqExactIf(session_key,
        first_click_at < {start:DateTime64(3, 'UTC')}
        OR first_click_at >= {end:DateTime64(3, 'UTC')}
        OR toUnixTimestamp64Milli(first_click_at) <= 1)"""
_UNMARKED = ",\n    countIf(toUnixTimestamp64Milli(first_click_at) = 0) AS unmarked"
_OUTBOUND_COUNTS = """
SELECT
    {key} AS {name},
    count() AS clicks,
    {unique} AS unique_clicks,
    toUnixTimestamp64Milli(max(timestamp)) AS latest_ms{unmarked}
FROM events FINAL
WHERE site_id = {{site:String}}
  AND timestamp >= {{start:DateTime64(3, 'UTC')}} AND timestamp < {{end:DateTime64(3, 'UTC')}}
  AND name = 'click'
  {filter}
GROUP BY {name}
ORDER BY unique_clicks DESC, clicks DESC, {name} ASC
LIMIT 100
"""
_OUTBOUND_EXAMPLES = """
SELECT
    {key} AS {name},
    argMax((click_url, meta_values[indexOf(meta_keys, 'click_text')]), (timestamp, event_id))
        AS example
FROM events FINAL
WHERE site_id = {{site:String}}
  AND toDate(timestamp) IN (SELECT DISTINCT toDate(fromUnixTimestamp64Milli(
                                arrayJoin({{latest:Array(Int64)}}), 'UTC')))
  AND timestamp >= {{start:DateTime64(3, 'UTC')}} AND timestamp < {{end:DateTime64(3, 'UTC')}}
  AND name = 'click'
  AND toUnixTimestamp64Milli(timestamp) IN {{latest:Array(Int64)}}
  {filter}
GROUP BY {name}
"""
_BY_DOMAIN = {"key": "click_domain", "name": "domain", "filter": ""}
_BY_URL = {"key": "click_url", "name": "url", "filter": "AND click_domain = {domain:String}"}
OUTBOUND_DOMAINS = _OUTBOUND_COUNTS.format(unique=UNIQUE_DOMAIN_CLICKS, unmarked=_UNMARKED,
                                           **_BY_DOMAIN)
OUTBOUND_DOMAINS_HASHED = _OUTBOUND_COUNTS.format(unique=_UNIQUE_SESSIONS, unmarked="",
                                                  **_BY_DOMAIN)
OUTBOUND_DOMAIN_EXAMPLES = _OUTBOUND_EXAMPLES.format(**_BY_DOMAIN)
OUTBOUND_URLS = _OUTBOUND_COUNTS.format(unique=_UNIQUE_SESSIONS, unmarked="", **_BY_URL)
OUTBOUND_URL_EXAMPLES = _OUTBOUND_EXAMPLES.format(**_BY_URL)

# The same domain counts a UTC day at a time (outbound_days.py keeps finished days): per day
# and domain the clicks, first clicks, latest click and unmarked clicks; and the clicks whose
# first click was not on their own day (or is untracked), up to a cap per day. For a live
# range (today, a partial day) the clicks whose first click lies outside the whole period.
_CLICKS_IN_RANGE = """FROM events FINAL
WHERE site_id = {site:String}
  AND timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}
  AND name = 'click'"""
OUTBOUND_DAY_COUNTS = f"""
SELECT toString(toDate(timestamp)) AS day, click_domain AS domain, count() AS clicks,
    countIf(is_first_click = 1) AS firsts, toUnixTimestamp64Milli(max(timestamp)) AS latest_ms,
    countIf(toUnixTimestamp64Milli(first_click_at) = 0) AS unmarked
{_CLICKS_IN_RANGE}
GROUP BY day, domain
"""
OUTBOUND_DAY_CROSSING = f"""
SELECT toString(toDate(timestamp)) AS day, click_domain AS domain, session_id,
    toUnixTimestamp64Milli(first_click_at) AS first_ms
{_CLICKS_IN_RANGE}
  AND toDate(first_click_at) != toDate(timestamp)
LIMIT {{cap:UInt32}} BY day
"""
OUTBOUND_LIVE_CROSSING = f"""
SELECT click_domain AS domain, session_id
{_CLICKS_IN_RANGE}
  AND (toUnixTimestamp64Milli(first_click_at) NOT BETWEEN {{period_start_ms:Int64}}
                                                     AND {{period_end_ms:Int64}} - 1
       OR toUnixTimestamp64Milli(first_click_at) <= 1)
LIMIT {{cap:UInt32}}
"""

# Sessions (A3). Every version of a session row has the same site and started_at, so the
# filters below mean the same before and after FINAL collapses the versions.
SESSION_COLUMNS = """
    session_id, toUnixTimestamp64Milli(started_at) AS started_ms, entry_page, exit_page,
    pageviews, duration, country, device, browser, os, referrer_source AS source,
    has_clicked, has_converted, is_bounce, goals
"""

_SESSIONS_PAGE = """
SELECT {columns}
FROM sessions FINAL
WHERE site_id = {{site:String}}
  AND started_at >= {{start:DateTime64(3, 'UTC')}} AND started_at < {{end:DateTime64(3, 'UTC')}}
  {after}
ORDER BY started_at DESC, session_id DESC
LIMIT {{limit:UInt32}}
"""
_AFTER_CURSOR = ("AND (started_at, session_id) < "
                 "(fromUnixTimestamp64Milli({cursor_ms:Int64}, 'UTC'), {cursor_sid:String})")
SESSIONS_FIRST_PAGE = _SESSIONS_PAGE.format(columns=SESSION_COLUMNS, after="")
SESSIONS_NEXT_PAGE = _SESSIONS_PAGE.format(columns=SESSION_COLUMNS, after=_AFTER_CURSOR)

# One session by id: its start day from session_starts (migration 007), then that day's key.
# This and the timeline read a granule or two: one thread saves the pool's hand-offs (on the
# 300 k bench set, 7.8 ms against 12.6 ms median for this query).
SESSION = f"""
SELECT {SESSION_COLUMNS}, toUnixTimestamp64Milli(last_event_at) AS last_ms
FROM sessions FINAL
WHERE site_id = {{site:String}}
  AND toDate(started_at) IN (SELECT toDate(started_at) FROM session_starts
                             WHERE site_id = {{site:String}} AND session_id = {{sid:String}})
  AND session_id = {{sid:String}}
LIMIT 1
SETTINGS max_threads = 1
"""

# The timeline reads the session's time range (widened by the caller for clock skew between
# ingest replicas), so it touches one site's few days, then the session's rows in the key.
TIMELINE = """
SELECT
    toUnixTimestamp64Milli(timestamp) AS ts_ms, toString(event_id) AS event_id, name, url,
    path, scroll_depth, visible_ms, click_domain, custom_name, goals, meta_keys, meta_values
FROM events FINAL
WHERE site_id = {site:String}
  AND timestamp >= fromUnixTimestamp64Milli({first_ms:Int64}, 'UTC')
  AND timestamp <= fromUnixTimestamp64Milli({last_ms:Int64}, 'UTC')
  AND session_id = {sid:String}
ORDER BY timestamp, event_id
LIMIT {limit:UInt32}
SETTINGS max_threads = 1
"""

# KPIs (A4), from the sessions table only, so every figure describes the same sessions
# (those that started in the range), summed per UTC day of their start: see day_sums.py.
KPI_DAYS = """
SELECT
    toString(toDate(started_at)) AS day,
    count() AS sessions,
    uniqExact(visitor_id) AS visitors,
    sum(pageviews) AS pageviews,
    countIf(is_bounce = 1) AS bounces,
    countIf(has_converted = 1) AS conversions,
    sum(duration) AS duration_total,
    sum(max_scroll) AS scroll_total
FROM sessions FINAL
WHERE site_id = {site:String}
  AND started_at >= {start:DateTime64(3, 'UTC')} AND started_at < {end:DateTime64(3, 'UTC')}
GROUP BY day
"""

# The active parts of a table's day partitions in [first, stop), each by name and content
# hash: what a day's KPI sums (sessions) or outbound counts (events) are kept against. Any
# write to a day (insert, merge, mutation) changes its list; the hash because a name can come
# back with other rows (see day_sums.py). This database's parts only.
DAY_PARTS = """
SELECT partition AS day,
    arrayStringConcat(arraySort(groupArray(name || ':' || hash_of_all_files)), ' ') AS parts
FROM system.parts
WHERE database = currentDatabase() AND table = {table:String} AND active
  AND partition >= {first:String} AND partition < {stop:String}
GROUP BY partition
"""

# Goals (A5). Deleted goals keep their row (deleted = 1), so names of goals that converted
# sessions in the past still resolve.
GOAL_NAMES = (
    "SELECT goal_id, name, is_conversion FROM goals FINAL WHERE site_id = {site:String}"
)

_GOAL_COLUMNS = """
    site_id, goal_id, name, type, conditions, logic, is_conversion,
    toUnixTimestamp64Milli(created_at) AS created_ms, version
"""
GOALS = f"""
SELECT {_GOAL_COLUMNS} FROM goals FINAL
WHERE site_id = {{site:String}} AND deleted = 0
ORDER BY created_at, goal_id
"""
GOAL = f"""
SELECT {_GOAL_COLUMNS} FROM goals FINAL
WHERE site_id = {{site:String}} AND goal_id = {{goal:String}} AND deleted = 0
"""
