"""The API's SQL. Every value is a bound ``{name:Type}`` parameter; only fixed fragments
chosen by code are ever joined into the text. Every query starts its WHERE with the site and,
for events and sessions, the time range: the first columns of the tables' sort keys. The
outbound example URL and text come from one row, the domain's latest click (ties broken by
event id), so they belong together."""

from __future__ import annotations

OUTBOUND_DOMAINS = """
SELECT
    click_domain AS domain,
    count() AS clicks,
    uniqExact(session_id) AS unique_clicks,
    argMax((meta_values[indexOf(meta_keys, 'click_url')],
            meta_values[indexOf(meta_keys, 'click_text')]), (timestamp, event_id)) AS example,
    example.1 AS example_url,
    example.2 AS example_text
FROM events FINAL
WHERE site_id = {site:String}
  AND timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}
  AND name = 'click'
GROUP BY domain
ORDER BY unique_clicks DESC, clicks DESC, domain ASC
LIMIT 100
"""

OUTBOUND_URLS = """
SELECT
    meta_values[indexOf(meta_keys, 'click_url')] AS url,
    count() AS clicks,
    uniqExact(session_id) AS unique_clicks,
    any(click_domain) AS domain,
    argMax((meta_values[indexOf(meta_keys, 'click_url')],
            meta_values[indexOf(meta_keys, 'click_text')]), (timestamp, event_id)) AS example,
    example.1 AS example_url,
    example.2 AS example_text
FROM events FINAL
WHERE site_id = {site:String}
  AND timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}
  AND name = 'click'
  AND click_domain = {domain:String}
GROUP BY url
ORDER BY unique_clicks DESC, clicks DESC, url ASC
LIMIT 100
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

SESSION = f"""
SELECT {SESSION_COLUMNS}, toUnixTimestamp64Milli(last_event_at) AS last_ms
FROM sessions FINAL
WHERE site_id = {{site:String}} AND session_id = {{sid:String}}
LIMIT 1
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
"""

# KPIs (A4): one scan over the period and the previous one, from the sessions table only, so
# every figure describes the same sessions (those that started in the period).
KPIS = """
SELECT
    started_at >= {start:DateTime64(3, 'UTC')} AS current,
    count() AS sessions,
    uniqExact(visitor_id) AS visitors,
    sum(pageviews) AS pageviews,
    countIf(is_bounce = 1) AS bounces,
    countIf(has_converted = 1) AS conversions,
    sum(duration) AS duration_total,
    sum(max_scroll) AS scroll_total
FROM sessions FINAL
WHERE site_id = {site:String}
  AND started_at >= {previous_start:DateTime64(3, 'UTC')}
  AND started_at < {end:DateTime64(3, 'UTC')}
GROUP BY current
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
