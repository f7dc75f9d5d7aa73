"""Realistic traffic: the beacons a tracker posts and the enriched events the sessionizer
reads, for one registered site. Sessions are five events (pageview, click, engagement,
pageview, click), destinations spread over a few hundred domains with an Amazon share; all
values are deterministic for a seed, so runs compare like with like."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import orjson

from services.core.event import Event

SITE = "shop.example.com"
# A current desktop Chrome on Windows: the most common User-Agent class a site sees.
DESKTOP_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
PAGES = ["/reviews/best-noise-cancelling-headphones-2025", "/guides/espresso-machines-under-500",
         "/deals/black-friday-laptops", "/reviews/robot-vacuum-comparison",
         "/blog/how-we-test-running-shoes", "/reviews/4k-monitors-for-photo-editing"]
QUERY = "?utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale"


def session_id(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(rng.choice(alphabet) for _ in range(22))


def destination(rng: random.Random, i: int) -> tuple[str, str, str | None]:
    """(url, link text, ASIN or None): a third Amazon, the rest over ~300 shop domains."""
    if i % 3 == 0:
        asin = f"B0{rng.randrange(10**8):08d}"
        return (f"https://www.amazon.com/dp/{asin}?tag=shopexample-20&linkCode=ogi&th=1&psc=1",
                "Check price on Amazon", asin)
    shop = f"shop{int(rng.paretovariate(1.2)) % 300}.example"
    return (f"https://www.{shop}/product/{rng.randrange(10**6)}?ref=shopexample&src=review",
            "See today's deal at the retailer", None)


def click_beacon(rng: random.Random, sid: str, i: int) -> dict[str, Any]:
    page = f"https://{SITE}{PAGES[i % len(PAGES)]}{QUERY}"
    url, text, _ = destination(rng, i)
    return {"t": "c", "d": SITE, "u": page, "sid": sid, "cu": url, "ct": text, "ck": "primary"}


def session_beacons(rng: random.Random, sid: str, i: int) -> list[dict[str, Any]]:
    page = f"https://{SITE}{PAGES[i % len(PAGES)]}{QUERY}"
    return [
        {"t": "p", "d": SITE, "u": page, "sid": sid, "r": "https://www.google.com/"},
        click_beacon(rng, sid, i),
        {"t": "e", "d": SITE, "u": page, "sid": sid, "sd": 40 + i % 60, "vt": 5000 + i % 40000},
        {"t": "p", "d": SITE, "u": page.replace("/reviews/", "/compare/"), "sid": sid,
         "r": page},
        click_beacon(rng, sid, i + 1),
    ]


def click_bodies(count: int, seed: int = 8) -> list[bytes]:
    """``count`` click beacons of distinct sessions, each 300-400 bytes of JSON."""
    rng = random.Random(seed)
    return [orjson.dumps(click_beacon(rng, session_id(rng), i)) for i in range(count)]


def session_bodies(sessions: int, seed: int = 9) -> list[bytes]:
    """Five beacons per session, sessions one after another."""
    rng = random.Random(seed)
    out: list[bytes] = []
    for i in range(sessions):
        out += [orjson.dumps(b) for b in session_beacons(rng, session_id(rng), i)]
    return out


def events(count: int, *, seed: int = 10, start_ms: int = 1_764_000_000_000,
           site: str = SITE) -> Iterator[Event]:
    """``count`` enriched events as ingest would publish them, five per session, the
    sessions interleaved 50 at a time (as concurrent visitors' events are)."""
    rng = random.Random(seed)
    open_sessions: list[tuple[str, int, int]] = []  # (sid, visitor id, next event index)
    n = 0
    while n < count:
        if len(open_sessions) < 50:
            open_sessions.append((session_id(rng), rng.getrandbits(63), 0))
        pick = rng.randrange(len(open_sessions))
        sid, vid, step = open_sessions[pick]
        yield event_of(rng, sid, vid, step, n, start_ms + n * 7, site)
        n += 1
        if step == 4:
            open_sessions.pop(pick)
        else:
            open_sessions[pick] = (sid, vid, step + 1)


def event_of(rng: random.Random, sid: str, vid: int, step: int, n: int, ts: int,
             site: str = SITE) -> Event:
    page_path = PAGES[n % len(PAGES)]
    common: dict[str, Any] = dict(
        id=uuid.UUID(int=rng.getrandbits(128), version=4).hex, site=site, sid=sid, ts=ts,
        vid=vid, url=f"https://{site}{page_path}{QUERY}", path=page_path,
        utm_source="newsletter", utm_medium="email", utm_campaign="spring-sale",
        device="desktop", browser="Chrome", os="Windows")
    if step in (0, 3):
        return Event(kind="pageview", referrer="https://www.google.com/", source="Google",
                     **common)
    if step == 2:
        return Event(kind="engagement", scroll=40 + n % 60, visible_ms=5000 + n % 40000,
                     **common)
    url, text, asin = destination(rng, n)
    domain = url.split("/")[2].removeprefix("www.")
    return Event(kind="click", click_url=url, click_text=text, click_kind="primary",
                 click_domain=domain, asin=asin or "", **common)
