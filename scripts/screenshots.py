"""Screenshots of the dashboard for the docs: starts the embedded app on a temporary data
directory, loads a demo data set through the real ingest path (``POST /api/event``, then the
sessionizer), opens ``/dashboard`` in Debian's Chromium at 1280x900 and saves PNGs.

Run it through ``scripts/screenshots`` (``--out DIR``, default docs/screenshots). It needs the
virtualenv (with playwright) and ``/usr/bin/chromium``; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import secrets
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from services.core.settings import BotFilter, Settings  # noqa: E402
from services.embedded.app import DEMO_DOMAIN, build_embedded_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SITE = f"https://{DEMO_DOMAIN}"
GOALS = [
    {"name": "Amazon click", "type": "click",
     "conditions": [{"field": "domain", "operator": "contains", "value": "amazon"}]},
    {"name": "Booking affiliate", "type": "click", "logic": "all",
     "conditions": [{"field": "domain", "operator": "equals", "value": "booking.com"},
                    {"field": "url", "operator": "contains", "value": "aid="}]},
    {"name": "Pricing view", "type": "pageview", "is_conversion": False,
     "conditions": [{"field": "path", "operator": "equals", "value": "/pricing"}]},
]
PAGES = ["/", "/best-headphones-2026", "/reviews/sony-wh-1000xm5", "/deals", "/blog/vpn-guide",
         "/pricing", "/reviews/kindle-paperwhite", "/travel/lisbon-hotels"]
REFERRERS = ["", "", "https://www.google.com/", "https://www.google.com/",
             "https://duckduckgo.com/", "https://www.reddit.com/r/headphones/",
             "https://news.ycombinator.com/", "https://t.co/xyz", "https://www.bing.com/"]
CLICKS = [
    ("https://www.amazon.com/dp/B0BXYCS74F?tag=demo-20", "Check price on Amazon"),
    ("https://www.amazon.com/dp/B08KTZ8249?tag=demo-20", "Kindle Paperwhite on Amazon"),
    ("https://www.amazon.de/dp/B0BXYCS74F?tag=demo-21", "Amazon.de"),
    ("https://www.booking.com/hotel/pt/lisbon-central.html?aid=356980", "See rooms"),
    ("https://www.booking.com/city/pt/lisbon.html?aid=356980", "All Lisbon hotels"),
    (f"{SITE}/go/nordvpn", "Get NordVPN (68% off)"),
    ("https://www.bestbuy.com/site/sony-wh1000xm5/6505727.p", "Best Buy"),
    ("https://github.com/clickport/clickport", "Source on GitHub"),
    ("https://www.rtings.com/headphones/reviews/sony/wh-1000xm5", "RTINGS review"),
    ("https://stripe.com/pricing", "Stripe pricing"),
]
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{v} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_beacons(rng: random.Random) -> list[dict[str, Any]]:
    """One visit: 1-4 pageviews with engagement, maybe outbound clicks."""
    sid = secrets.token_urlsafe(16)
    beacons: list[dict[str, Any]] = []
    pages = rng.sample(PAGES, rng.choice([1, 1, 2, 2, 3, 4]))
    referrer = rng.choice(REFERRERS)
    for i, path in enumerate(pages):
        url = SITE + path
        view = {"t": "p", "d": DEMO_DOMAIN, "u": url, "sid": sid}
        if i == 0 and referrer:
            view["r"] = referrer
        beacons.append(view)
        if rng.random() < 0.45:
            dest, text = rng.choice(CLICKS)
            beacons.append({"t": "c", "d": DEMO_DOMAIN, "u": url, "sid": sid, "cu": dest,
                            "ct": text, "ck": rng.choice(["primary"] * 5 + ["middle"])})
        if rng.random() < 0.8:
            beacons.append({"t": "e", "d": DEMO_DOMAIN, "u": url, "sid": sid,
                            "sd": rng.choice([5, 12, 30, 45, 60, 80, 100]),
                            "vt": rng.randint(2_000, 140_000)})
    return beacons


def load_demo_data(base: str, key: str, parts: Any) -> int:
    with httpx.Client(base_url=base, timeout=10) as client:
        for goal in GOALS:
            client.post("/api/goals", json=goal, headers={"x-api-key": key}).raise_for_status()
        deadline = time.monotonic() + 15
        while len(parts.sessionizer.goals) < len(GOALS) and time.monotonic() < deadline:
            time.sleep(0.05)
        rng = random.Random(2026)
        posted = 0
        for visit in range(90):
            ua = rng.choice(USER_AGENTS).format(v=100 + rng.randint(0, 60))
            if visit % 3:  # some visitors come back for a second session
                ua = ua.replace("Gecko", f"Gecko{visit}", 1)
            for beacon in session_beacons(rng):
                answer = client.post("/api/event", json=beacon, headers={"user-agent": ua})
                answer.raise_for_status()
                posted += 1
        # The dashboard's one story: a visit that reads a review, scrolls, and clicks out.
        sid = secrets.token_urlsafe(16)
        page = SITE + "/reviews/sony-wh-1000xm5"
        ua = USER_AGENTS[0].format(v=131)
        for beacon in [
            {"t": "p", "d": DEMO_DOMAIN, "u": SITE + "/best-headphones-2026", "sid": sid,
             "r": "https://www.google.com/"},
            {"t": "e", "d": DEMO_DOMAIN, "u": SITE + "/best-headphones-2026", "sid": sid,
             "sd": 45, "vt": 21_000},
            {"t": "p", "d": DEMO_DOMAIN, "u": page, "sid": sid},
            {"t": "c", "d": DEMO_DOMAIN, "u": page, "sid": sid, "ct": "RTINGS review",
             "cu": "https://www.rtings.com/headphones/reviews/sony/wh-1000xm5", "ck": "middle"},
            {"t": "c", "d": DEMO_DOMAIN, "u": page, "sid": sid, "ct": "Check price on Amazon",
             "cu": "https://www.amazon.com/dp/B0BXYCS74F?tag=demo-20", "ck": "primary"},
            {"t": "e", "d": DEMO_DOMAIN, "u": page, "sid": sid, "sd": 85, "vt": 64_000},
        ]:
            client.post("/api/event", json=beacon, headers={"user-agent": ua}).raise_for_status()
            posted += 1
            time.sleep(0.6)  # receive times a little apart, so the timeline's offsets differ
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = parts.store.query("SELECT (SELECT count() FROM events FINAL) AS e, "
                                "(SELECT sum(events) FROM sessions FINAL) AS s")[0]
        if int(row["e"]) == posted and int(row["s"]) == posted:
            return posted
        time.sleep(0.1)
    raise TimeoutError("the sessionizer did not store the demo data in time")


def take_screenshots(base: str, key: str, out: pathlib.Path) -> list[pathlib.Path]:
    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1280, "height": 900},
                                color_scheme="light", device_scale_factor=1)
        page.goto(f"{base}/dashboard#key={key}")
        for panel in ("#kpis", "#outbound-view", "#sessions-view"):
            page.wait_for_selector(f"{panel}[data-state=ready]")
        page.wait_for_timeout(300)
        shots.append(out / "dashboard.png")
        page.screenshot(path=shots[-1], full_page=True)

        story = page.locator("li.session").first  # the newest: the review-and-click visit
        story.locator(".session-row").click()
        story.locator(".timeline-panel[data-state=ready]").wait_for()
        page.evaluate("document.querySelector('#sessions-panel').scrollIntoView()")
        page.wait_for_timeout(200)
        shots.append(out / "timeline.png")
        page.screenshot(path=shots[-1])

        page.evaluate("window.scrollTo(0, 0)")
        page.click("#subtab-goals")
        page.wait_for_selector("#goals-view[data-state=ready]")
        page.locator("li.goal", has_text="Booking affiliate").get_by_role("button",
                                                                          name="Edit").click()
        page.wait_for_selector("#goal-dialog[open]")
        page.wait_for_timeout(200)
        shots.append(out / "goal-editor.png")
        page.screenshot(path=shots[-1])
        browser.close()
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clickport-shots-") as data_dir:
        settings = Settings.from_env({}, data_dir=pathlib.Path(data_dir),
                                     rate_limit_per_minute=0, bot_filter=BotFilter.OFF,
                                     batch_max_seconds=0.1)
        app = build_embedded_app(settings)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 90
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the embedded app did not start")
            time.sleep(0.05)
        try:
            parts = app.state.embedded
            base = f"http://127.0.0.1:{port}"
            posted = load_demo_data(base, parts.demo_key, parts)
            print(f"loaded {posted} beacons through POST /api/event")
            for path in take_screenshots(base, parts.demo_key, args.out):
                print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        finally:
            server.should_exit = True
            thread.join(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
