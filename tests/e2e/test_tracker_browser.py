"""Issue #3's browser proof: Debian's Chromium, driven by Playwright, clicks real links on test
pages, and each test asserts exactly which events land in the events table of the REAL
embedded app (ingest -> disk queue -> sessionizer -> chDB) served by uvicorn on loopback.

The pages come from a second loopback server at http://shop.test:PORT/ and load the tracker
from the ingest origin (http://127.0.0.1:PORT/js/clickport.js) with ``data-api`` pointing
there too, so every beacon is a cross-origin POST; the ingest server records every request,
and no CORS preflight (OPTIONS) may ever reach it. Host names are mapped to loopback by
Chromium's --host-resolver-rules (see browser.py). Spec: PRODUCT.md T1-T11, I1.

Each test runs in a fresh browser context (a new tab, so a new session) and reads its own
session id from the page (``sessionStorage.cp_sid``), except the click-at-once test, which
must not spend a round trip between load and click and finds its session by its page URL.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from browser import (
    CHROMIUM,
    PAGE_HOST,
    SITE,
    Ingest,
    Landed,
    PageServer,
    chromium_args,
    run_ingest,
    run_pages,
    sync_playwright_or_skip,
    wait_for_events,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

PARTNER = "http://www.partner.example/landing?ref=cp"
PARTNER_CLICK = (PARTNER, "Partner deal", "", "primary", "partner.example")
NAV_TIMEOUT_MS = 15_000


# ---- Fixtures: one ingest server, one page server, one browser for the module ---------------


@pytest.fixture(scope="module")
def playwright_factory() -> Any:
    return sync_playwright_or_skip()  # skips (or fails in CI) before any server is started


@pytest.fixture(scope="module")
def ingest(playwright_factory: Any, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Ingest]:
    with run_ingest(tmp_path_factory.mktemp("clickport-data")) as running:
        yield running
    assert not [s for s in running.recorder.seen if s.method == "OPTIONS"], \
        "a CORS preflight reached the ingest service"


@pytest.fixture(scope="module")
def pages(ingest: Ingest) -> Iterator[PageServer]:
    with run_pages(ingest.origin) as server:
        yield server


@pytest.fixture(scope="module")
def browser(playwright_factory: Any, pages: PageServer) -> Iterator[Any]:
    with playwright_factory() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=chromium_args(pages.port))
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context()
    ctx.set_default_timeout(NAV_TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


# ---- Helpers -----------------------------------------------------------------------------------


def open_page(page: Any, pages: PageServer, path: str) -> str:
    """Load a test page and return the session id the tracker made for this tab."""
    page.goto(pages.url(path), wait_until="load")
    page.wait_for_function("sessionStorage.getItem('cp_sid')")
    sid = str(page.evaluate("sessionStorage.getItem('cp_sid')"))
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", sid), sid
    return sid


def has(pageviews: int = 0, clicks: int = 0, engagements: int = 0) -> Any:
    def done(landed: Landed) -> bool:
        return (len(landed.named("pageview")) >= pageviews
                and len(landed.named("click")) >= clicks
                and len(landed.named("engagement")) >= engagements)
    return done


def check_beacon_requests(ingest: Ingest, pages: PageServer) -> None:
    """Every beacon so far was a simple cross-origin POST: text/plain, no preflight."""
    posts = [s for s in ingest.recorder.seen if s.path == "/api/event"]
    assert posts and all(s.method == "POST" for s in posts), posts
    assert {s.content_type for s in posts} == {"text/plain;charset=UTF-8"}
    assert {s.origin for s in posts} <= {pages.url("")}, {s.origin for s in posts}


# ---- Cases ---------------------------------------------------------------------------------------


def test_a_real_click_that_navigates_away_is_stored_and_not_blocked(
        page: Any, pages: PageServer, ingest: Ingest) -> None:
    sid = open_page(page, pages, "/links")
    page.click("#partner")
    page.wait_for_url(PARTNER)  # the navigation went ahead: the partner's page loaded
    assert page.title() == "landed"

    landed = wait_for_events(ingest.store, sid, has(pageviews=1, clicks=1))
    assert landed.pageview_paths() == ["/links"]
    assert landed.clicks() == [PARTNER_CLICK]
    [click] = landed.named("click")
    assert click["url"] == pages.url("/links")  # the page the click was made on
    # Leaving the page also sent its engagement (one beacon, the short page cannot scroll);
    # nothing else was stored.
    assert sorted(r["name"] for r in landed.rows) == ["click", "engagement", "pageview"], \
        landed.summary()
    [engaged] = landed.named("engagement")
    assert engaged["path"] == "/links" and engaged["scroll_depth"] == 0
    assert engaged["visible_ms"] > 0
    check_beacon_requests(ingest, pages)


@pytest.mark.parametrize("kind", ["middle", "modifier", "keyboard"])
def test_click_kind_middle_modifier_and_keyboard(
        kind: str, page: Any, context: Any, pages: PageServer, ingest: Ingest) -> None:
    sid = open_page(page, pages, "/links")
    if kind == "middle":  # auxclick; Chromium opens the link in a new tab
        with context.expect_page():
            page.click("#stripe", button="middle")
        expected = ("https://www.stripe.com/pricing", "Stripe pricing", "", "middle",
                    "stripe.com")
    elif kind == "modifier":  # ctrl+click: a new tab as well
        with context.expect_page() as opened:
            page.click("#blog", modifiers=["Control"])
        opened.value.wait_for_url("http://blog.partner.example/post")
        expected = ("http://blog.partner.example/post", "Partner blog", "", "modifier",
                    "blog.partner.example")
    else:  # Enter on a focused link: a click event with detail 0
        page.focus("#partner")
        page.keyboard.press("Enter")
        page.wait_for_url(PARTNER)
        expected = (PARTNER, "Partner deal", "", "keyboard", "partner.example")

    landed = wait_for_events(ingest.store, sid, has(pageviews=1, clicks=1))
    assert landed.clicks() == [expected]
    assert landed.pageview_paths() == ["/links"]


def test_a_click_at_once_after_load_is_in_the_pages_session(
        page: Any, pages: PageServer, ingest: Ingest) -> None:
    url = pages.url(f"/quick?run={uuid.uuid4().hex}")
    page.goto(url, wait_until="load")
    page.mouse.click(40, 30)  # the fixed-position link; no look-up between load and click
    page.wait_for_url("http://www.partner.example/quick")

    def sessions() -> list[str]:
        rows = ingest.store.query(
            "SELECT DISTINCT session_id FROM events FINAL WHERE site_id = {site:String} "
            "AND url = {url:String}", {"site": SITE, "url": url})
        return [r["session_id"] for r in rows]

    deadline = time.monotonic() + 20
    while not (found := sessions()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(found) == 1, found  # the pageview and the click share one session
    sid = found[0]
    landed = wait_for_events(ingest.store, sid, has(pageviews=1, clicks=1))
    assert landed.pageview_paths() == ["/quick"]
    assert landed.clicks() == [("http://www.partner.example/quick", "Quick deal", "",
                                "primary", "partner.example")]
    [view] = landed.named("pageview")
    [click] = landed.named("click")
    assert view["url"] == click["url"] == url
    # Server receive times: the click came right after the page had loaded.
    assert 0 <= click["ts"] - view["ts"] < 3000, (view["ts"], click["ts"])


def test_an_outbound_link_in_an_spa_view_added_after_load(
        page: Any, pages: PageServer, ingest: Ingest) -> None:
    sid = open_page(page, pages, "/spa")
    page.click("#show")  # history.pushState('/spa/deals') + new DOM
    page.click("#spa-out")
    page.wait_for_url("http://www.partner.example/spa-deal")

    landed = wait_for_events(ingest.store, sid, has(pageviews=2, clicks=1))
    assert landed.pageview_paths() == ["/spa", "/spa/deals"]
    second = landed.named("pageview")[1]
    assert second["url"] == pages.url("/spa/deals")
    assert second["referrer"] == pages.url("/spa")  # the previous view, as a full load would
    assert landed.clicks() == [("http://www.partner.example/spa-deal", "Deal of the day", "",
                                "primary", "partner.example")]
    assert landed.named("click")[0]["path"] == "/spa/deals"


def test_a_link_inside_an_open_shadow_root(page: Any, pages: PageServer, ingest: Ingest) -> None:
    sid = open_page(page, pages, "/links")
    page.click("cp-card span.label")  # the span inside the <a> inside the shadow root
    page.wait_for_url("http://deals.partner.example/shadow")

    landed = wait_for_events(ingest.store, sid, has(pageviews=1, clicks=1))
    assert landed.clicks() == [("http://deals.partner.example/shadow", "Shadow deal", "",
                                "primary", "deals.partner.example")]


def test_a_target_blank_link(page: Any, context: Any, pages: PageServer,
                             ingest: Ingest) -> None:
    sid = open_page(page, pages, "/links")
    with context.expect_page() as opened:
        page.click("#blank")
    opened.value.wait_for_url("http://news.partner.example/story")
    assert page.url == pages.url("/links")  # the site stays open in its own tab

    landed = wait_for_events(ingest.store, sid, has(pageviews=1, clicks=1))
    assert landed.clicks() == [("http://news.partner.example/story", "Partner news", "",
                                "primary", "news.partner.example")]
    assert landed.pageview_paths() == ["/links"]


def test_a_go_redirect_link_on_the_own_host_is_outbound_with_its_asin(
        page: Any, pages: PageServer, ingest: Ingest) -> None:
    sid = open_page(page, pages, "/links")
    page.click("#go")
    page.wait_for_url("http://www.partner.example/deal?asin=B08N5WRWNW")  # followed the 302

    landed = wait_for_events(ingest.store, sid, has(pageviews=1, clicks=1))
    assert landed.clicks() == [(pages.url("/go/headphones?asin=B08N5WRWNW"),
                                "Headphones via /go/", "B08N5WRWNW", "primary", PAGE_HOST)]


def test_an_amazon_dp_link_captures_the_asin_upper_case(
        page: Any, pages: PageServer, ingest: Ingest) -> None:
    sid = open_page(page, pages, "/links")
    page.click("#amazon")  # https to a loopback port 443 where nothing listens: may not load

    landed = wait_for_events(ingest.store, sid, has(pageviews=1, clicks=1))
    assert landed.clicks() == [
        ("https://www.amazon.com/Sony-WH-1000XM4/dp/b0863tgfqq/ref=sr_1_1?keywords=x",
         "Sony on Amazon", "B0863TGFQQ", "primary", "amazon.com")]


def test_mailto_gopher_and_www_of_the_own_host_are_not_outbound(
        page: Any, pages: PageServer, ingest: Ingest) -> None:
    sid = open_page(page, pages, "/links")
    for link in ("#mail", "#tel", "#top"):  # these stay on the page
        page.click(link)
    page.click("#gopher")
    page.wait_for_url(pages.url("/gopher"))
    open_page(page, pages, "/links")
    page.click("#www")  # www.shop.test from shop.test: the same site
    page.wait_for_url(pages.url("/x", host="www." + PAGE_HOST))
    # The same tab, back on the shop: the same session. Then one real outbound click, so
    # that the wait below ends only after every earlier beacon had its chance to land.
    assert open_page(page, pages, "/links") == sid
    page.click("#partner")
    page.wait_for_url(PARTNER)

    landed = wait_for_events(ingest.store, sid, has(pageviews=3, clicks=1))
    assert landed.clicks() == [PARTNER_CLICK]
    assert landed.pageview_paths() == ["/links", "/links", "/links"]


def test_scrolling_to_the_bottom_then_leaving_sends_the_scroll_depth(
        page: Any, pages: PageServer, ingest: Ingest) -> None:
    sid = open_page(page, pages, "/tall")
    page.mouse.move(200, 200)
    page.mouse.wheel(0, 20_000)
    page.wait_for_function("window.scrolledToBottom")
    page.wait_for_timeout(200)  # some visible time on the page
    page.click("#next")  # leave: pagehide on /tall, a new page (/links) in the same tab
    page.wait_for_url(pages.url("/links"))

    landed = wait_for_events(ingest.store, sid, has(pageviews=2, engagements=1))
    # One engagement beacon for /tall, sent as it was left; /links is on the site: no click.
    assert sorted(r["name"] for r in landed.rows) == ["engagement", "pageview", "pageview"], \
        landed.summary()
    assert landed.pageview_paths() == ["/tall", "/links"]
    [engaged] = landed.named("engagement")
    assert engaged["path"] == "/tall" and engaged["url"] == pages.url("/tall")
    assert engaged["scroll_depth"] >= 90, landed.summary()
    assert engaged["visible_ms"] >= 200, landed.summary()
