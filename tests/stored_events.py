"""Events read back from the ``events`` table as the `Event` they were stored from, so a
test can fold `apply_event` over what the Store holds (tests/reliability/test_store_outage.py,
tests/e2e/test_embedded_dead_letters.py)."""

from __future__ import annotations

from typing import Any

from services.core.event import Event

EVENT_COLUMNS = """
    toString(event_id) AS id, site_id, session_id, toUnixTimestamp64Milli(timestamp) AS ts,
    name, url, path, visitor_id, referrer, referrer_source, utm_source, utm_medium,
    utm_campaign, utm_term, utm_content, device, browser, os, country, click_domain,
    scroll_depth, visible_ms, custom_name, meta_keys, meta_values
"""


def event_of_row(row: dict[str, Any]) -> Event:
    meta = dict(zip(row["meta_keys"], row["meta_values"], strict=True))
    click = row["name"] == "click"
    return Event(
        id=row["id"], site=row["site_id"], sid=row["session_id"], ts=int(row["ts"]),
        kind=row["name"], url=row["url"], path=row["path"], vid=int(row["visitor_id"]),
        referrer=row["referrer"], source=row["referrer_source"],
        utm_source=row["utm_source"], utm_medium=row["utm_medium"],
        utm_campaign=row["utm_campaign"], utm_term=row["utm_term"],
        utm_content=row["utm_content"], device=row["device"], browser=row["browser"],
        os=row["os"], country=row["country"], click_domain=row["click_domain"],
        click_url=meta.get("click_url", "") if click else "",
        click_text=meta.get("click_text", "") if click else "",
        click_kind=meta.get("click_kind", "") if click else "",
        asin=meta.get("asin", "") if click else "",
        scroll=int(row["scroll_depth"]), visible_ms=int(row["visible_ms"]),
        name=row["custom_name"], props={} if click else meta,
    )
