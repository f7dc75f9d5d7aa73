"""One test per ingest step and per drop reason (STYLE.md 3)."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest
from helpers import click, engagement, pageview

from services.core.beacon import decode_beacon
from services.core.event import Event, decode_event, encode_event
from services.ingest import steps
from services.ingest.limits import RateLimiter, client_ip, trusted_networks
from services.ingest.steps import Context, Drop, Incoming, process
from services.ingest.user_agents import UserAgents

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
SID = "abcdefghijklmnopqrstuv"
DAY = 86_400_000
USER_AGENTS = UserAgents()


def custom(sid: str, name: str, props: dict[str, str] | None = None) -> dict[str, object]:
    return {"t": "x", "d": "example.com", "u": "https://example.com/", "sid": sid, "n": name,
            "p": props or {}}


def salt_of_the_day(received_ms: int) -> bytes:
    """A stand-in for SaltBook: a different key each UTC day (tests/unit/test_ingest_salts.py
    covers the real one)."""
    return hashlib.sha256(str(received_ms // DAY).encode()).digest()


def ctx(**overrides: object) -> Context:
    values: dict[str, object] = {
        "known_sites": {"example.com"},
        "daily_salt": salt_of_the_day,
        "allow_request": lambda ip, now: True,
        "user_agent_info": USER_AGENTS.classify,
        "bot_filter": True,
    }
    values.update(overrides)
    return Context(**values)  # type: ignore[arg-type]


def incoming(beacon: dict[str, object], ua: str = FIREFOX, ip: str = "203.0.113.9",
             at: int = 1_700_000_000_000) -> Incoming:
    return Incoming(decode_beacon(orjson.dumps(beacon)), ip, ua, at)


def test_steps_are_named_for_their_power() -> None:
    names = [step.__name__ for step in steps.STEPS]
    assert all(name.startswith(("drop_", "put_")) for name in names)
    assert names.index("drop_rate_limited") < names.index("drop_bot")  # cheap drops first
    assert names[-1] == "put_visitor_id"


@pytest.mark.parametrize("beacon", [pageview(SID), click(SID, "https://shop.com/"),
                                    engagement(SID, 50, 900), custom(SID, "signup")],
                         ids=["pageview", "click", "engagement", "custom"])
def test_put_steps_add_data_and_never_drop(beacon: dict[str, object]) -> None:
    item = incoming(beacon)
    for step in steps.STEPS:
        if step.__name__.startswith("put_"):
            assert step(item, ctx()) is None
    assert {"site", "url", "path", "device", "browser", "os", "vid"} <= set(item.fields)


def test_put_site_strips_one_www() -> None:
    item = incoming(pageview(SID, domain="www.Example.com"))
    steps.put_site(item, ctx())
    assert item.fields == {"site": "example.com"}


def test_drop_unknown_site() -> None:
    assert process(incoming(pageview(SID, domain="other.com")), ctx()) == Drop("unknown_site")


def test_www_domain_is_the_registered_site() -> None:
    result = process(incoming(pageview(SID, domain="www.example.com")), ctx())
    assert isinstance(result, Event) and result.site == "example.com"


@pytest.mark.parametrize("ua", [
    "Googlebot/2.1", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0", "python-requests/2.32.3", "", "Mozilla/5.0 (X11; Linux x86_64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"])
def test_drop_bot(ua: str) -> None:
    assert process(incoming(pageview(SID), ua=ua), ctx()) == Drop("bot")


def test_a_browser_is_not_a_bot() -> None:
    assert steps.drop_bot(incoming(pageview(SID), ua=IPHONE), ctx()) is None


def test_bot_filter_off_keeps_headless_browsers() -> None:
    result = process(incoming(pageview(SID), ua="HeadlessChrome/120"), ctx(bot_filter=False))
    assert isinstance(result, Event) and result.device == "bot"


def test_a_rate_limited_bot_is_counted_as_rate_limit_without_parsing_its_agent() -> None:
    def no_parsing(ua: str) -> object:
        raise AssertionError("parsed a User-Agent of an event over the rate limit")

    limited = ctx(allow_request=lambda ip, now: False, user_agent_info=no_parsing)
    assert process(incoming(pageview(SID), ua="Googlebot/2.1"), limited) == Drop("rate_limit")


def test_drop_rate_limited() -> None:
    limited = ctx(allow_request=lambda ip, now: False)
    assert process(incoming(pageview(SID)), limited) == Drop("rate_limit")


def test_drop_bad_click_url() -> None:
    assert process(incoming(click(SID, "mailto:a@b.c")), ctx()) == Drop("bad_click_url")


@pytest.mark.parametrize("beacon", [
    pageview(SID, url="https://example.com/admin"),
    pageview(SID, url="https://example.com/admin/users?x=1"),
    click(SID, "https://shop.com/", url="https://example.com/preview/draft-1"),
    engagement(SID, 10, 100, url="https://example.com/admin/"),
], ids=["pageview-exact", "pageview-below", "click", "engagement"])
def test_drop_excluded_path(beacon: dict[str, object]) -> None:
    excluded = ctx(excluded_paths=("/admin", "/preview/"))
    assert process(incoming(beacon), excluded) == Drop("excluded_path")


@pytest.mark.parametrize("path", ["/administrator", "/blog/admin", "/", "/previews"])
def test_excluded_paths_match_whole_segments(path: str) -> None:
    assert not steps.is_excluded_path(path, ("/admin", "/preview/"))


def test_an_excluded_path_with_a_star_is_a_plain_prefix() -> None:
    assert steps.is_excluded_path("/administrator", ("/admin*",))
    assert steps.is_excluded_path("/anything", ("/",))


def test_no_excluded_paths_drops_nothing() -> None:
    assert isinstance(process(incoming(pageview(SID, url="https://example.com/admin")), ctx()),
                      Event)


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


def test_an_idn_referrer_is_its_punycode_domain() -> None:
    assert steps.referrer_source("https://www.gооgle.com/", "example.com") == "xn--ggle-55da.com"


def test_put_click_keeps_the_trackers_asin_from_go_links() -> None:
    beacon = click(SID, "https://example.com/go/x?asin=B08N5WRWNW", ca="B08N5WRWNW")
    result = process(incoming(beacon), ctx())
    assert isinstance(result, Event) and result.asin == "B08N5WRWNW"


def test_put_engagement() -> None:
    result = process(incoming(engagement(SID, 40, 1234)), ctx())
    assert isinstance(result, Event) and (result.scroll, result.visible_ms) == (40, 1234)


def test_put_custom() -> None:
    result = process(incoming(custom(SID, "signup", {"plan": "pro"})), ctx())
    assert isinstance(result, Event)
    assert (result.kind, result.name, result.props) == ("custom", "signup", {"plan": "pro"})


def test_put_user_agent_fills_device_browser_os() -> None:
    result = process(incoming(pageview(SID), ua=IPHONE), ctx())
    assert isinstance(result, Event)
    assert (result.device, result.browser, result.os) == ("mobile", "Safari", "iOS")


def test_put_country_asks_the_lookup_with_the_client_ip() -> None:
    asked: list[str] = []

    def country_of(ip: str) -> str:
        asked.append(ip)
        return "DE"

    result = process(incoming(pageview(SID), ip="198.51.100.7"), ctx(country_of=country_of))
    assert isinstance(result, Event) and result.country == "DE" and asked == ["198.51.100.7"]


def test_put_country_without_a_database_leaves_it_empty() -> None:
    result = process(incoming(pageview(SID)), ctx())
    assert isinstance(result, Event) and result.country == ""


def test_put_visitor_id_is_stable_within_a_day_and_changes_next_day() -> None:
    day = 86_400_000
    first = process(incoming(pageview(SID), at=day * 20_000 + 5), ctx())
    later = process(incoming(pageview(SID), at=day * 20_000 + 80_000_000), ctx())
    next_day = process(incoming(pageview(SID), at=day * 20_001 + 5), ctx())
    assert isinstance(first, Event) and isinstance(later, Event) and isinstance(next_day, Event)
    assert first.vid == later.vid != next_day.vid


def test_put_visitor_id_differs_per_site_ip_and_user_agent() -> None:
    def vid(**kw: object) -> int:
        result = process(incoming(pageview(SID), **kw), ctx(known_sites={"example.com"}))
        assert isinstance(result, Event)
        return result.vid

    assert len({vid(), vid(ip="203.0.113.10"), vid(ua=IPHONE)}) == 3


def test_visitor_id_is_the_hmac_sha256_of_site_ip_and_user_agent() -> None:
    for salt in (b"a" * 32, b"b" * 32, b"a" * 32):  # switching days reuses nothing wrongly
        message = f"example.com\x00203.0.113.9\x00{FIREFOX}".encode()
        expected = hmac.new(salt, message, hashlib.sha256).digest()[:8]
        assert steps.visitor_id(salt, "example.com", "203.0.113.9", FIREFOX) == int.from_bytes(
            expected, "big")


@pytest.mark.parametrize("ip", ["198.51.100.77", "2001:db8::1234"])
def test_the_ip_is_not_in_the_event_nor_in_the_published_bytes(ip: str) -> None:
    result = process(incoming(click(SID, "https://shop.com/"), ip=ip), ctx(
        country_of=lambda ip: "NL"))
    assert isinstance(result, Event)
    published = encode_event(result)
    assert ip not in repr(result)
    assert ip.encode() not in published and ip.encode("utf-16-le") not in published
    decoded = decode_event(published)
    assert all(ip not in str(getattr(decoded, name)) for name in Event.__struct_fields__)


def test_rate_limiter_counts_per_ip_per_minute() -> None:
    limiter = RateLimiter(2)
    assert [limiter.allow("a", 0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", 0) and limiter.allow("a", 60_000)
    assert all(RateLimiter(0).allow("a", 0) for _ in range(1000))


def test_forwarded_for_is_trusted_only_from_a_configured_proxy() -> None:
    assert client_ip("203.0.113.1", "1.2.3.4", ()) == "203.0.113.1"
    assert client_ip("10.0.0.2", "1.2.3.4, 10.0.0.3", ("10.0.0.0/8",)) == "1.2.3.4"
    assert client_ip("203.0.113.1", "1.2.3.4", ("10.0.0.0/8",)) == "203.0.113.1"


def test_trusted_proxies_are_parsed_once_and_a_bad_one_fails() -> None:
    assert trusted_networks(("10.0.0.0/8",)) is trusted_networks(("10.0.0.0/8",))
    with pytest.raises(ValueError):
        trusted_networks(("not-an-ip",))
