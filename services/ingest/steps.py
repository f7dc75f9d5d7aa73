"""Ingest as a list of named steps over one value (STYLE.md 3).

``drop_*`` steps may end processing with a reason (counted, answered 2xx, not stored) and add
nothing; ``put_*`` steps only add data and never end processing. `process` runs `STEPS` in
order and returns the `Event` to publish or the `Drop`. Cheap drops run first (a set lookup,
the per-IP counter) so a flood is cut before the User-Agent is parsed. Nothing here does
I/O: the site list, salts, rate limiter, User-Agent classifier and GeoIP lookup are handed
in through `Context`, so every step is a unit-testable function.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from services.core import urls
from services.core.beacon import Beacon, Click, Custom, Engagement, Pageview
from services.core.event import Event
from services.ingest.user_agents import UserAgentInfo

SEARCH_ENGINES = {"google": "Google", "bing": "Bing", "duckduckgo": "DuckDuckGo",
                  "yahoo": "Yahoo", "yandex": "Yandex", "baidu": "Baidu", "ecosia": "Ecosia"}
SOCIAL = {"facebook.com": "Facebook", "t.co": "Twitter", "twitter.com": "Twitter",
          "x.com": "Twitter", "reddit.com": "Reddit", "linkedin.com": "LinkedIn",
          "pinterest.com": "Pinterest", "youtube.com": "YouTube", "instagram.com": "Instagram"}


@dataclass(frozen=True)
class Drop:
    reason: str


@dataclass(slots=True)
class Incoming:
    """One beacon on its way through the steps; ``fields`` collects what put_* steps add.
    Its URLs are split once, when a step first reads them (`page_url`, `click_url`)."""

    beacon: Beacon
    client_ip: str
    user_agent: str
    received_ms: int
    fields: dict[str, Any] = field(default_factory=dict)
    _page_url: urls.UrlParts | None = field(default=None, repr=False)
    _click_url: urls.UrlParts | None = field(default=None, repr=False)

    def page_url(self) -> urls.UrlParts:
        if self._page_url is None:
            self._page_url = urls.split(self.beacon.u)
        return self._page_url

    def click_url(self) -> urls.UrlParts:
        """The destination of a click beacon (only called for clicks)."""
        if self._click_url is None:
            self._click_url = urls.split(self.beacon.cu)  # type: ignore[union-attr]
        return self._click_url


@dataclass(frozen=True)
class Context:
    known_sites: Container[str]
    daily_salt: Callable[[int], bytes]  # received_ms -> that day's key (salts.SaltBook)
    allow_request: Callable[[str, int], bool]  # (client ip, received_ms) -> under the limit?
    user_agent_info: Callable[[str], UserAgentInfo]  # user_agents.UserAgents.classify
    bot_filter: bool = True
    country_of: Callable[[str], str] | None = None  # geoip.CountryLookup when configured
    excluded_paths: tuple[str, ...] = ()  # CLICKPORT_EXCLUDED_PATHS


Step = Callable[[Incoming, Context], Drop | None]


def put_site(item: Incoming, ctx: Context) -> None:
    item.fields["site"] = urls.strip_www(item.beacon.d)


def drop_unknown_site(item: Incoming, ctx: Context) -> Drop | None:
    return None if item.fields["site"] in ctx.known_sites else Drop("unknown_site")


def drop_rate_limited(item: Incoming, ctx: Context) -> Drop | None:
    return None if ctx.allow_request(item.client_ip, item.received_ms) else Drop("rate_limit")


def drop_bad_click_url(item: Incoming, ctx: Context) -> Drop | None:
    if isinstance(item.beacon, Click) and not urls.is_web_url_of(item.click_url()):
        return Drop("bad_click_url")
    return None


def drop_excluded_path(item: Incoming, ctx: Context) -> Drop | None:
    """Every beacon from an excluded page (not only pageviews and clicks: an engagement or
    custom event from it would otherwise start or extend a session there)."""
    if ctx.excluded_paths and is_excluded_path(urls.path_of(item.page_url()), ctx.excluded_paths):
        return Drop("excluded_path")
    return None


def drop_bot(item: Incoming, ctx: Context) -> Drop | None:
    if ctx.bot_filter and ctx.user_agent_info(item.user_agent).is_bot:
        return Drop("bot")
    return None


def put_page(item: Incoming, ctx: Context) -> None:
    page = item.page_url()
    item.fields["url"] = item.beacon.u
    item.fields["path"] = urls.path_of(page)[:2048]
    item.fields.update(urls.utm_params_of(page))


def put_referrer_source(item: Incoming, ctx: Context) -> None:
    if not isinstance(item.beacon, Pageview):
        return
    item.fields["referrer"] = item.beacon.r
    item.fields["source"] = referrer_source(item.beacon.r, item.fields["site"])


def put_click(item: Incoming, ctx: Context) -> None:
    beacon = item.beacon
    if not isinstance(beacon, Click):
        return
    destination = item.click_url()
    item.fields.update(
        click_url=beacon.cu,
        click_text=beacon.ct,
        click_kind=beacon.ck,
        click_domain=urls.destination_domain_of(destination),
        asin=(beacon.ca or urls.amazon_asin_of(destination)).upper(),
    )


def put_engagement(item: Incoming, ctx: Context) -> None:
    if isinstance(item.beacon, Engagement):
        item.fields.update(scroll=item.beacon.sd, visible_ms=item.beacon.vt)


def put_custom(item: Incoming, ctx: Context) -> None:
    if isinstance(item.beacon, Custom):
        item.fields.update(name=item.beacon.n, props=dict(item.beacon.p))


def put_user_agent(item: Incoming, ctx: Context) -> None:
    info = ctx.user_agent_info(item.user_agent)  # a cache hit: drop_bot asked first
    item.fields.update(device=info.device, browser=info.browser, os=info.os)


def put_country(item: Incoming, ctx: Context) -> None:
    if ctx.country_of is not None:
        item.fields["country"] = ctx.country_of(item.client_ip)


def put_visitor_id(item: Incoming, ctx: Context) -> None:
    item.fields["vid"] = visitor_id(
        ctx.daily_salt(item.received_ms), item.fields["site"], item.client_ip, item.user_agent
    )


STEPS: tuple[Step, ...] = (
    put_site,
    drop_unknown_site,
    drop_rate_limited,
    drop_bad_click_url,
    drop_excluded_path,
    drop_bot,
    put_page,
    put_referrer_source,
    put_click,
    put_engagement,
    put_custom,
    put_user_agent,
    put_country,
    put_visitor_id,
)

_KIND = {Pageview: "pageview", Click: "click", Engagement: "engagement", Custom: "custom"}


def process(item: Incoming, ctx: Context) -> Event | Drop:
    for step in STEPS:
        dropped = step(item, ctx)
        if dropped is not None:
            return dropped
    return Event(
        id=os.urandom(16).hex(),  # 128 random bits; uuid4() costs 1.8 us more
        sid=item.beacon.sid,
        ts=item.received_ms,
        kind=_KIND[type(item.beacon)],  # type: ignore[arg-type]
        **item.fields,
    )


def visitor_id(salt: bytes, site: str, ip: str, user_agent: str) -> int:
    """I3: a keyed hash of site, IP and User-Agent under the day's salt, as a UInt64:
    HMAC-SHA256, continued from a copy of the state that has already absorbed the key."""
    mac = _keyed_hmac(salt).copy()
    mac.update(f"{site}\0{ip}\0{user_agent}".encode())
    return int.from_bytes(mac.digest()[:8], "big")


@functools.lru_cache(maxsize=1)
def _keyed_hmac(salt: bytes) -> hmac.HMAC:
    """The HMAC state of the key in use. One entry: requests use the key of the day they
    arrive, so the first request after midnight drops yesterday's, which is thus held no
    longer than the SaltBook holds it (I3)."""
    return hmac.new(salt, digestmod=hashlib.sha256)


def is_excluded_path(path: str, prefixes: tuple[str, ...]) -> bool:
    """``/admin`` (or ``/admin/``) excludes ``/admin`` and everything under ``/admin/``, not
    ``/administrator``; a trailing ``*`` makes a plain prefix (``/admin*``)."""
    for prefix in prefixes:
        if prefix.endswith("*"):
            if path.startswith(prefix[:-1]):
                return True
            continue
        base = prefix.rstrip("/")
        if path == base or path.startswith(base + "/"):
            return True
    return False


def referrer_source(referrer: str, site: str) -> str:
    """``direct`` for no referrer or a self-referral; a named engine or network; else the
    referring domain."""
    host = urls.strip_www(urls.ascii_host(urls.hostname(referrer))) if referrer else ""
    if not host or host == site or host.endswith("." + site):
        return "direct"
    if host in SOCIAL:
        return SOCIAL[host]
    labels = host.split(".")
    for label in labels[:-1]:
        if label in SEARCH_ENGINES:
            return SEARCH_ENGINES[label]
    return host
