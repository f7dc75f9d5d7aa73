"""What a User-Agent says: device type, browser, OS and whether it is a bot (I2, I4).

Two maintained libraries do the matching: `ua-parser` (the uap-core rules, through its Rust
resolver `ua-parser-rs` when installed, else its pure-Python one) for browser, OS and device,
and `crawlerdetect` (about 1,500 crawler patterns) for bots, with ua-parser's ``Spider``
device family and its ``HeadlessChrome`` browser as a second opinion. A cache miss costs
about 0.2 ms (crawlerdetect's big regex dominates; see docs/ingest.md), a hit well under a
microsecond, so every distinct User-Agent string is parsed once per cache lifetime: the
cache is a bounded LRU keyed on the (truncated) string. Nothing is loaded at import: the
composition root builds one `UserAgents` and hands it to the steps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import ua_parser
from crawlerdetect import CrawlerDetect

# Longer strings are real but rare (app tokens appended); matching the first 512 characters
# keeps the regex cost bounded for a hostile multi-kilobyte header.
MAX_PARSED_CHARS = 512
DEFAULT_CACHE_SIZE = 10_000

DESKTOP, MOBILE, TABLET, BOT = "desktop", "mobile", "tablet", "bot"

# ua-parser names the mobile variant of a browser separately; the device type already says
# "mobile", so the browser column keeps one name per product (as Plausible and Matomo do).
_BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Other": "",
}
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS", "Other": ""}
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS",
                        "Symbian OS", "Firefox OS", "HarmonyOS"})
_TABLET_DEVICES = frozenset({"iPad", "Kindle", "Kindle Fire"})
_TABLET_BRANDS = frozenset({"Generic_Android_Tablet"})


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    device: str  # desktop | mobile | tablet | bot
    browser: str  # product family ("Chrome", "Safari", ...), "" when unknown
    os: str  # OS family ("Windows", "macOS", "iOS", ...), "" when unknown
    is_bot: bool


EMPTY = UserAgentInfo(BOT, "", "", True)  # no real browser sends an empty User-Agent


class UserAgents:
    """``classify(ua)``: a `UserAgentInfo`, cached. Thread-safe (the cache is
    `functools.lru_cache`; the parsers hold no per-call state we read)."""

    def __init__(self, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        if ua_parser.RegexResolver is not None:  # the Rust resolver: ~20 us a miss
            resolver = ua_parser.RegexResolver(ua_parser.load_lazy_builtins())
        else:  # pure Python: ~0.5-1.5 ms a miss
            resolver = ua_parser.BasicResolver(ua_parser.load_builtins())
        self._parser = ua_parser.Parser(resolver)
        self._crawlers = CrawlerDetect()
        self.classify = functools.lru_cache(maxsize=cache_size)(self._classify)

    def _classify(self, user_agent: str) -> UserAgentInfo:
        ua = user_agent.strip()[:MAX_PARSED_CHARS]
        if not ua:
            return EMPTY
        parsed = self._parser(ua, ua_parser.Domain.ALL).complete()
        family = parsed.user_agent.family if parsed.user_agent else "Other"
        os_family = parsed.os.family if parsed.os else "Other"
        device = parsed.device
        is_bot = (
            (device is not None and device.family == "Spider")
            or family == "HeadlessChrome"
            or bool(self._crawlers.is_crawler(ua))
        )
        browser = _BROWSER_NAMES.get(family, family)
        os_name = _OS_NAMES.get(os_family, os_family)
        if is_bot:
            return UserAgentInfo(BOT, browser, os_name, True)
        return UserAgentInfo(device_type(ua, device, os_family), browser, os_name, False)


def device_type(ua: str, device: ua_parser.Device | None, os_family: str) -> str:
    """desktop, mobile or tablet. ua-parser names devices but has no type, so: iPads, Kindles
    and tablet-branded Androids are tablets, and so is Android without ``Mobile`` in the
    string (Google's rule for Chrome on tablets); a mobile OS or ``Mobi`` makes a phone.
    iPadOS Safari sends a Mac desktop string by default and is counted as desktop."""
    family = device.family if device else ""
    brand = (device.brand or "") if device else ""
    tablet_token = "Tablet" in ua and "Tablet PC" not in ua  # "Tablet PC": old Windows
    if family in _TABLET_DEVICES or brand in _TABLET_BRANDS or tablet_token or "Silk/" in ua:
        return TABLET
    if os_family == "Android" and "Mobile" not in ua:
        return TABLET
    if os_family in _MOBILE_OS or family in ("iPhone", "iPod") or "Mobi" in ua:
        return MOBILE
    return DESKTOP
