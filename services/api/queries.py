"""The API's SQL. Every value is a bound ``{name:Type}`` parameter; only fixed fragments
chosen by code are ever joined into the text. Every query starts its WHERE with the site and
the time range, the first columns of the tables' sort keys. The example URL and text come
from one row, the domain's latest click (ties broken by event id), so they belong together."""

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
