"""The API's figures by plain SQL over the whole range, nothing kept: what the kept days
(services/api/day_sums.py, outbound_days.py) are checked against."""

# The KPI sums of the sessions that started in [start, end) (visitors as one distinct count:
# the data sets give each day its own visitor ids, as the daily salt does).
KPI_SUMS = """
SELECT count() AS sessions, uniqExact(visitor_id) AS visitors, sum(pageviews) AS pageviews,
    countIf(is_bounce = 1) AS bounces, countIf(has_converted = 1) AS conversions,
    sum(duration) AS duration_total, sum(max_scroll) AS scroll_total
FROM sessions FINAL
WHERE site_id = {site:String}
  AND started_at >= {start:DateTime64(3, 'UTC')} AND started_at < {end:DateTime64(3, 'UTC')}
"""

# The outbound report's domain rows, unique clicks as distinct session ids.
OUTBOUND_DOMAINS = """
SELECT click_domain AS domain, count() AS clicks, uniqExact(session_id) AS unique_clicks
FROM events FINAL
WHERE site_id = {site:String}
  AND timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}
  AND name = 'click'
GROUP BY domain
ORDER BY unique_clicks DESC, clicks DESC, domain ASC
LIMIT 100
"""
