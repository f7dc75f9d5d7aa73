"""One test per ingest step and per drop reason (STYLE.md 3)."""

from __future__ import annotations

import orjson
from helpers import click, engagement, pageview

from services.core.beacon import decode_beacon
from services.core.event import Event
from services.ingest import steps
from services.ingest.limits import DailySalt, RateLimiter, client_ip
from services.ingest.steps import Context, Drop, Incoming, process

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SID = "abcdefghijklmnopqrstuv"


def ctx(**overrides: object) -> Context:
    values: dict[str, object] = {
        "known_sites": {"example.com"},
        "daily_salt": DailySalt(b"secret"),
        "allow_request": lambda ip, now: True,
        "bot_filter": True,
    }
    values.update(overrides)
    return Context(**values)  # type: ignore[arg-type]


def incoming(beacon: dict[str, object], ua: str = FIREFOX, ip: str = "203.0.113.9",
             at: int = 1_700_000_000_000) -> Incoming:
    return Incoming(decode_beacon(orjson.dumps(beacon)), ip, ua, at)


def test_drop_unknown_site() -> None:
    assert process(incoming(pageview(SID, domain="other.com")), ctx()) == Drop("unknown_site")


def test_www_domain_is_the_registered_site() -> None:
    result = process(incoming(pageview(SID, domain="www.example.com")), ctx())
    assert isinstance(result, Event) and result.site == "example.com"


def test_drop_bot() -> None:
    assert process(incoming(pageview(SID), ua="Googlebot/2.1"), ctx()) == Drop("bot")
    assert process(incoming(pageview(SID), ua=""), ctx()) == Drop("bot")


def test_bot_filter_off_keeps_headless_browsers() -> None:
    result = process(incoming(pageview(SID), ua="HeadlessChrome/120"), ctx(bot_filter=False))
    assert isinstance(result, Event)


def test_drop_rate_limited() -> None:
    limited = ctx(allow_request=lambda ip, now: False)
    assert process(incoming(pageview(SID)), limited) == Drop("rate_limit")


def test_drop_bad_click_url() -> None:
    assert process(incoming(click(SID, "mailto:a@b.c")), ctx()) == Drop("bad_click_url")


def test_put_page_takes_path_and_utm() -> None:
    result = process(incoming(pageview(SID, url="https://example.com/p?utm_source=nl")), ctx())
    assert isinstance(result, Event)
    assert (result.path, result.utm_source) == ("/p", "nl")


def test_put_referrer_source() -> None:
    assert steps.referrer_source("", "example.com") == "direct"
    assert steps.referrer_source("https://www.example.com/a", "example.com") == "direct"
    assert steps.referrer_source("https://www.google.co.uk/", "example.com") == "Google"
    assert steps.referrer_source("https://t.co/x", "example.com") == "Twitter"
    assert steps.referrer_source("https://news.site.org/", "example.com") == "news.site.org"


def test_put_click_sets_destination_domain_and_asin() -> None:
    result = process(incoming(click(SID, "https://www.amazon.com/dp/b07fz8s74r", "Echo")), ctx())
    assert isinstance(result, Event)
    assert (result.click_domain, result.asin, result.click_text) == ("amazon.com", "B07FZ8S74R",
                                                                     "Echo")


def test_put_click_keeps_the_trackers_asin_from_go_links() -> None:
    beacon = click(SID, "https://example.com/go/x?asin=B08N5WRWNW", ca="B08N5WRWNW")
    result = process(incoming(beacon), ctx())
    assert isinstance(result, Event) and result.asin == "B08N5WRWNW"


def test_put_engagement() -> None:
    result = process(incoming(engagement(SID, 40, 1234)), ctx())
    assert isinstance(result, Event) and (result.scroll, result.visible_ms) == (40, 1234)


def test_put_visitor_id_is_stable_within_a_day_and_changes_next_day() -> None:
    day = 86_400_000
    first = process(incoming(pageview(SID), at=day * 20_000 + 5), ctx())
    later = process(incoming(pageview(SID), at=day * 20_000 + 80_000_000), ctx())
    next_day = process(incoming(pageview(SID), at=day * 20_001 + 5), ctx())
    assert isinstance(first, Event) and isinstance(later, Event) and isinstance(next_day, Event)
    assert first.vid == later.vid != next_day.vid


def test_the_ip_is_not_in_the_event() -> None:
    result = process(incoming(pageview(SID), ip="198.51.100.77"), ctx())
    assert "198.51.100.77" not in repr(result)


def test_rate_limiter_counts_per_ip_per_minute() -> None:
    limiter = RateLimiter(2)
    assert [limiter.allow("a", 0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", 0) and limiter.allow("a", 60_000)
    assert all(RateLimiter(0).allow("a", 0) for _ in range(1000))


def test_forwarded_for_is_trusted_only_from_a_configured_proxy() -> None:
    assert client_ip("203.0.113.1", "1.2.3.4", ()) == "203.0.113.1"
    assert client_ip("10.0.0.2", "1.2.3.4, 10.0.0.3", ("10.0.0.0/8",)) == "1.2.3.4"
    assert client_ip("203.0.113.1", "1.2.3.4", ("10.0.0.0/8",)) == "203.0.113.1"
