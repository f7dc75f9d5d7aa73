"""Issue #7's browser proof: the dashboard (PRODUCT.md D1) in Debian's Chromium, driven by
Playwright, against the REAL embedded app (ingest -> disk queue -> sessionizer -> chDB -> query
API) under uvicorn on loopback. The data set below is posted through ``POST /api/event`` with
Firefox User-Agents (bot filter off, no rate limit) and written by the real sessionizer, so
every figure the page shows is known in advance.

Every test opens the page in a fresh browser context through ``/dashboard#key=...`` and, at
the end, checks that no dialog fired, no script error or CSP violation happened and no request
left the app's origin (no CDN, nothing external).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from browser import CHROMIUM, Ingest, run_ingest, sync_playwright_or_skip
from helpers import click, engagement, new_sid, pageview

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

SITE = "demo.localhost"
A = f"https://{SITE}"
XSS = "<img src=x onerror=alert(1)>"
GREEN = "rgb(22, 163, 74)"  # --outbound in styles.css
TIMEOUT_MS = 15_000
AMAZON_GOAL = {"name": "Amazon click", "type": "click",
               "conditions": [{"field": "domain", "operator": "contains", "value": "amazon"}]}


def user_agent(visitor: int) -> str:
    return f"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/{120 + visitor}.0"


# (label, visitor, beacons for a sid): one session each, posted in this order, so the newest
# session is S6. Expected figures (A4): 6 sessions of 4 visitors, 7 pageviews (1.17 a visit);
# S5 is the one bounce (1 pageview, no click, scroll 10 < 25, 3 s < 15 s): 16.7 %; S3 is the
# one conversion (the Amazon goal): 16.7 %; duration (20 + 5 + 3) / 6 = 4.67 -> 5 s; scroll
# (60 + 30 + 10) / 6 = 16.67 -> 17 %. Outbound: stripe.com 3 clicks from 2 sessions (S1 twice,
# S6), amazon.com 1/1, evil.example 1/1 (tie on unique and clicks: by domain).
DATASET: list[tuple[str, int, Callable[[str], list[dict[str, Any]]]]] = [
    ("S1", 1, lambda s: [
        pageview(s, f"{A}/", SITE),
        click(s, "https://www.stripe.com/pricing", "Stripe pricing", SITE, f"{A}/"),
        click(s, "https://stripe.com/docs", "Stripe docs", SITE, f"{A}/")]),
    ("S2", 1, lambda s: [
        pageview(s, f"{A}/", SITE), pageview(s, f"{A}/pricing", SITE),
        engagement(s, 60, 20_000, SITE, f"{A}/pricing")]),
    ("S3", 2, lambda s: [
        pageview(s, f"{A}/review", SITE),
        click(s, "https://www.amazon.com/dp/B000000001", "Buy on Amazon", SITE, f"{A}/review")]),
    ("S4", 3, lambda s: [
        pageview(s, f"{A}/review", SITE),
        click(s, "https://evil.example/x", XSS, SITE, f"{A}/review"),
        engagement(s, 30, 5_000, SITE, f"{A}/review")]),
    ("S5", 4, lambda s: [
        pageview(s, f"{A}/", SITE, r="https://www.google.com/"),
        engagement(s, 10, 3_000, SITE, f"{A}/")]),
    ("S6", 2, lambda s: [
        pageview(s, f"{A}/", SITE),
        click(s, "https://stripe.com/pay", "Pay", SITE, f"{A}/")]),
]
KPIS_SHOWN = {"visitors": "4", "pageviews": "7", "views_per_visit": "1.17",
              "bounce_rate": "16.7%", "conversions": "1", "conversion_rate": "16.7%",
              "avg_duration": "5s", "avg_scroll": "17%"}
KPI_LABELS = ["Visitors", "Pageviews", "Views/Visit", "Bounce", "Conversions", "Conv. Rate",
              "Duration", "Scroll"]


@dataclass
class Served:
    ingest: Ingest
    key: str
    sids: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.ingest.origin

    def api(self, path: str, **params: str) -> Any:
        answer = httpx.get(self.base + path, params=params, headers={"x-api-key": self.key},
                           timeout=10)
        answer.raise_for_status()
        return answer.json()


def wait_for(check: Callable[[], Any], seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


def load_dataset(served: Served) -> None:
    parts = served.ingest.app.state.embedded
    with httpx.Client(base_url=served.base, timeout=10) as client:
        created = client.post("/api/goals", json=AMAZON_GOAL, headers={"x-api-key": served.key})
        assert created.status_code == 201, created.text
        assert wait_for(lambda: any(g.name == "Amazon click" for g in parts.sessionizer.goals))
        posted = 0
        for label, visitor, beacons in DATASET:
            sid = served.sids[label] = new_sid()
            for beacon in beacons(sid):
                answer = client.post("/api/event", content=orjson.dumps(beacon), headers={
                    "user-agent": user_agent(visitor), "content-type": "text/plain"})
                assert answer.json() == {"ok": True}, answer.text
                posted += 1
            time.sleep(0.005)  # distinct start milliseconds: "newest first" is exact

    def stored() -> bool:
        row = parts.store.query("SELECT (SELECT count() FROM events FINAL) AS e, "
                                "(SELECT sum(events) FROM sessions FINAL) AS s")[0]
        return int(row["e"]) == posted and int(row["s"]) == posted

    assert wait_for(stored), "the sessionizer did not write the data set in time"


# ---- Fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright_factory() -> Any:
    return sync_playwright_or_skip()  # skips (or fails in CI) before any server is started


@pytest.fixture(scope="module")
def served(playwright_factory: Any, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    with run_ingest(tmp_path_factory.mktemp("dashboard-data")) as ingest:
        data = Served(ingest, ingest.app.state.embedded.demo_key)
        load_dataset(data)
        yield data


@pytest.fixture(scope="module")
def browser(playwright_factory: Any, served: Served) -> Iterator[Any]:
    with playwright_factory() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", "--disable-component-update",
            # Anything but loopback fails to resolve: the page must need nothing external.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        yield launched
        launched.close()


@dataclass
class Watched:
    """What a page did that it must not: dialogs, script errors, CSP reports, other origins."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def page(browser: Any, served: Served, watched: Watched) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.on("pageerror", lambda error: watched.errors.append(str(error)))
    tab.on("console", lambda msg: watched.errors.append(msg.text)
           if msg.type == "error" and "Content Security Policy" in msg.text else None)
    tab.on("request", lambda request: watched.requests.append(request.url))
    yield tab
    context.close()
    assert watched.dialogs == [], "a dialog fired"
    assert watched.errors == [], watched.errors
    strangers = [u for u in watched.requests if not u.startswith(served.base + "/")]
    assert strangers == [], f"requests left the app's origin: {strangers}"


def open_dashboard(page: Any, served: Served, query: str = "") -> None:
    page.goto(f"{served.base}/dashboard{query}#key={served.key}")
    wait_ready(page)


def wait_ready(page: Any) -> None:
    for panel in ("#kpis", "#outbound-view", "#sessions-view"):
        page.wait_for_selector(f"{panel}[data-state=ready]")


def session(page: Any, served: Served, label: str) -> Any:
    return page.locator(f"li.session[data-session-id='{served.sids[label]}']")


def open_timeline(page: Any, served: Served, label: str) -> Any:
    row = session(page, served, label)
    row.locator(".session-row").click()
    row.locator(".timeline-panel[data-state=ready]").wait_for()
    return row


# ---- The page and its key ---------------------------------------------------------------------


def test_the_page_has_a_strict_csp_and_the_root_leads_to_it(served: Served) -> None:
    answer = httpx.get(served.base + "/dashboard")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    csp = answer.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "<script>" not in answer.text and " style=" not in answer.text  # nothing inline
    module = httpx.get(served.base + "/dashboard/assets/main.js")
    assert module.headers["content-type"].startswith("text/javascript")
    assert httpx.get(served.base + "/dashboard/assets/nope.js").status_code == 404
    root = httpx.get(served.base + "/", follow_redirects=False)
    assert root.status_code in (302, 307) and root.headers["location"] == "/dashboard"
    for name in ("api", "format", "kpis", "outbound", "sessions", "goals", "main"):
        source = httpx.get(f"{served.base}/dashboard/assets/{name}.js").text
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source, name


def test_the_key_comes_from_the_fragment_and_leaves_the_address_bar(
        page: Any, served: Served) -> None:
    open_dashboard(page, served)
    assert page.url == f"{served.base}/dashboard"  # the fragment is gone
    assert page.evaluate("localStorage.getItem('clickport.apiKey')") == served.key
    assert page.locator("#site-name").text_content() == SITE
    page.goto(f"{served.base}/")  # the stored key opens the page without a fragment
    wait_ready(page)
    assert page.url == f"{served.base}/dashboard"

    page.goto(f"{served.base}/dashboard#key=ck_{'x' * 32}")  # a key the API does not know
    page.locator("#key-screen").wait_for()
    assert "not accepted" in page.locator("#key-error").text_content()
    page.fill("#key-input", served.key)
    page.click("#key-form button[type=submit]")
    wait_ready(page)


# ---- KPIs ------------------------------------------------------------------------------------


def test_the_kpi_row_shows_the_eight_figures_of_the_data_set(page: Any, served: Served) -> None:
    open_dashboard(page, served)
    cards = page.locator("#kpis .kpi")
    assert cards.count() == 8
    assert [t.strip() for t in cards.locator(".kpi-label").all_text_contents()] == KPI_LABELS
    shown = {card.get_attribute("data-kpi"): card.locator(".kpi-value").text_content()
             for card in cards.all()}
    assert shown == KPIS_SHOWN
    visitors = page.locator("[data-kpi=visitors] .kpi-value")
    assert visitors.get_attribute("title") == "Visitors: 4"
    # Everything is today; the previous 30 days are empty: no change to show.
    assert set(page.locator(".kpi-change").all_text_contents()) == {"—"}


def test_large_numbers_are_abbreviated_with_the_full_value_and_change_on_hover(
        page: Any, served: Served) -> None:
    """The figures from the data set are small, so this one answer is made up: the API's
    shape with large values, to see them rendered."""
    real = served.api("/api/kpis")
    big = {**real["results"], "visitors": 12_345, "pageviews": 4_500_000, "bounce_rate": 40.0,
           "avg_duration": 125}
    before = {**real["previous"], "visitors": 10_000, "pageviews": 4_500_000,
              "bounce_rate": 50.0, "avg_duration": 100}
    page.route("**/api/kpis?*", lambda route: route.fulfill(
        json={**real, "results": big, "previous": before}))
    open_dashboard(page, served)

    def card(key: str) -> tuple[str, str, str, str]:
        value = page.locator(f"[data-kpi={key}] .kpi-value")
        delta = page.locator(f"[data-kpi={key}] .kpi-change")
        return (value.text_content(), value.get_attribute("title"), delta.text_content(),
                delta.get_attribute("class"))

    assert card("visitors") == ("12.3k", "Visitors: 12,345", "▲ 23%", "kpi-change good")
    assert card("pageviews")[:3] == ("4.5M", "Pageviews: 4,500,000", "0%")
    assert card("bounce_rate") == ("40%", "Bounce: 40%", "▼ 20%", "kpi-change good")
    assert card("avg_duration")[:3] == ("2m 5s", "Duration: 125 seconds", "▲ 25%")


# ---- Content panel: Goals > Outbound ------------------------------------------------------------


def outbound_rows(page: Any) -> list[tuple[str, str, str]]:
    rows = page.locator("#outbound-table tbody tr")
    return [(r.locator("td").nth(0).inner_text().strip(), r.locator("td").nth(1).text_content(),
             r.locator("td").nth(2).text_content()) for r in rows.all()]


def test_the_outbound_subtab_lists_domains_by_unique_clicks_and_drills_into_urls(
        page: Any, served: Served) -> None:
    open_dashboard(page, served)
    assert page.locator("#subtab-outbound").get_attribute("aria-selected") == "true"
    assert page.locator("#outbound-table th").all_text_contents() == [
        "Destination", "Clicks", "Unique"]
    assert outbound_rows(page) == [("stripe.com", "3", "2"), ("amazon.com", "1", "1"),
                                   ("evil.example", "1", "1")]

    with page.expect_request(lambda r: "/api/outbound-links" in r.url
                             and "domain=stripe.com" in r.url):
        page.click("#outbound-table tr[data-domain='stripe.com'] .row-link")
    page.wait_for_selector("#outbound-view[data-state=ready] [data-crumb=domain]")
    assert page.locator("[data-crumb=domain]").text_content() == "stripe.com"
    urls = page.locator("#outbound-table tbody tr")
    assert [u.get_attribute("data-url") for u in urls.all()] == [
        "https://stripe.com/docs", "https://stripe.com/pay", "https://www.stripe.com/pricing"]
    assert [(c, u) for _, c, u in outbound_rows(page)] == [("1", "1")] * 3
    docs = page.locator("#outbound-table tr[data-url='https://stripe.com/docs']")
    assert docs.locator("a.url").get_attribute("href") == "https://stripe.com/docs"
    assert docs.locator(".sub").text_content() == "Stripe docs"

    page.click("#outbound-crumbs .back")
    page.wait_for_selector("#outbound-table tr[data-domain='amazon.com']")
    assert len(outbound_rows(page)) == 3


def test_a_look_alike_destination_is_shown_in_punycode_with_a_warning(
        page: Any, served: Served) -> None:
    """Issue #9 item 10: a Cyrillic а in amazon.com looked exactly like amazon.com."""
    from services.core import sites as site_rules

    parts = served.ingest.app.state.embedded
    site = "lookalike.test"
    _, key = site_rules.add_site(parts.store, site)
    parts.known_sites.add(site)
    sid = new_sid()
    clicks = ["https://amazon.com/dp/B000000001", "https://аmazon.com/dp/B000000001",
              "https://аmazon.com/x", "https://münchen.de/"]
    with httpx.Client(base_url=served.base, timeout=10) as client:
        for url in clicks:
            answer = client.post("/api/event", content=orjson.dumps(
                click(sid, url, "link", site, f"https://{site}/")),
                headers={"user-agent": user_agent(1), "content-type": "text/plain"})
            assert answer.json() == {"ok": True}, answer.text
    assert wait_for(lambda: int(parts.store.query(
        "SELECT count() AS n FROM events FINAL WHERE site_id = {s:String}",
        {"s": site})[0]["n"]) == len(clicks))

    page.goto(f"{served.base}/dashboard#key={key}")
    wait_ready(page)
    assert outbound_rows(page) == [("⚠ xn--mazon-3ve.com", "2", "1"), ("amazon.com", "1", "1"),
                                   ("xn--mnchen-3ya.de münchen.de", "1", "1")]
    fake = page.locator("#outbound-table tr[data-domain='xn--mazon-3ve.com']")
    marker = fake.locator(".lookalike")
    assert marker.is_visible() and marker.get_attribute("aria-label") == "Look-alike domain"
    assert "“аmazon.com”" in str(marker.get_attribute("title"))
    assert "mixes letters of different scripts" in str(fake.locator(".row-link")
                                                       .get_attribute("title"))
    real = page.locator("#outbound-table tr[data-domain='amazon.com']")
    assert real.locator(".lookalike").count() == 0
    idn = page.locator("#outbound-table tr[data-domain='xn--mnchen-3ya.de']")
    assert idn.locator(".lookalike").count() == 0
    assert idn.locator(".idn-unicode").text_content() == "münchen.de"

    fake.locator(".row-link").click()
    page.wait_for_selector("#outbound-view[data-state=ready] [data-crumb=domain] .lookalike")
    shown = page.locator("#outbound-table a.url").all_text_contents()
    assert sorted(shown) == ["https://xn--mazon-3ve.com/dp/B000000001",
                             "https://xn--mazon-3ve.com/x"]


# ---- Sessions ------------------------------------------------------------------------------------


def test_sessions_are_newest_first_with_markers_and_pages_by_cursor(
        page: Any, served: Served) -> None:
    # A page of 4 instead of 25, so the real API's cursor paging is used by the real page.
    page.route("**/api/sessions?*", lambda route: route.continue_(
        url=route.request.url.replace("limit=25", "limit=4")))
    open_dashboard(page, served)
    rows = page.locator("li.session")
    newest = ["S6", "S5", "S4", "S3", "S2", "S1"]
    assert [r.get_attribute("data-session-id") for r in rows.all()] == [
        served.sids[s] for s in newest[:4]]
    more = page.locator("#sessions-more")
    assert more.is_visible()
    with page.expect_request(lambda r: "/api/sessions" in r.url and "cursor=" in r.url):
        more.click()
    rows.nth(5).wait_for()  # (wait_for_function would eval a string, which the CSP forbids)
    assert [r.get_attribute("data-session-id") for r in rows.all()] == [
        served.sids[s] for s in newest]
    assert more.is_hidden()

    def cells(label: str) -> list[str]:
        row = session(page, served, label).locator(".session-row .cell")
        return [c.strip() for c in row.all_inner_texts()]

    assert cells("S2")[1:] == ["/", "2", "20s", "Desktop", "Direct", ""]
    assert cells("S5")[1:] == ["/", "1", "3s", "Desktop", "Google", ""]
    assert session(page, served, "S1").locator(".marker-clicked").count() == 1
    assert session(page, served, "S1").locator(".marker-converted").count() == 0
    converted = session(page, served, "S3").locator(".marker-converted")
    assert converted.get_attribute("title") == "Converted: Amazon click"


def test_a_timeline_marks_the_outbound_click_with_a_green_dot_and_its_destination(
        page: Any, served: Served) -> None:
    open_dashboard(page, served)
    row = open_timeline(page, served, "S3")
    events = row.locator(".timeline > li")
    assert [e.get_attribute("data-kind") for e in events.all()] == ["pageview", "click"]
    assert events.nth(0).locator(".path").text_content() == "/review"
    clicked = events.nth(1)
    dot = clicked.locator(".dot")
    assert "dot-outbound" in dot.get_attribute("class")
    assert dot.evaluate("el => getComputedStyle(el).backgroundColor") == GREEN
    assert events.nth(0).locator(".dot").evaluate(
        "el => getComputedStyle(el).backgroundColor") != GREEN
    link = clicked.locator(".destination a.url")
    assert link.text_content() == "https://www.amazon.com/dp/B000000001"
    assert link.get_attribute("href") == "https://www.amazon.com/dp/B000000001"
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert clicked.locator(".link-text").text_content() == "“Buy on Amazon”"
    assert "ASIN B000000001" in clicked.locator(".sub").text_content()
    assert clicked.locator(".conversion").text_content() == "★Converted: Amazon click"

    two = open_timeline(page, served, "S1")  # two outbound clicks: two green dots, in order
    assert two.locator(".dot-outbound").count() == 2
    assert two.locator(".destination a.url").all_text_contents() == [
        "https://www.stripe.com/pricing", "https://stripe.com/docs"]
    row.locator(".session-row").click()  # closes again
    assert row.locator(".timeline-panel").is_hidden()


def test_visitor_text_with_markup_is_shown_as_literal_text(
        page: Any, served: Served, watched: Watched) -> None:
    open_dashboard(page, served)
    row = open_timeline(page, served, "S4")
    text = row.locator(".event-click .link-text")
    assert text.text_content() == f"“{XSS}”"
    page.click("#outbound-table tr[data-domain='evil.example'] .row-link")
    page.wait_for_selector("#outbound-table tr[data-url='https://evil.example/x']")
    assert page.locator("#outbound-table .sub").text_content() == XSS
    page.wait_for_timeout(300)  # time for an onerror handler to run, had an <img> been made
    assert page.locator("img").count() == 0
    assert watched.dialogs == []


# ---- Goals --------------------------------------------------------------------------------------


def test_a_goal_is_created_in_the_editor_after_an_api_validation_error(
        page: Any, served: Served) -> None:
    open_dashboard(page, served)
    page.click("#subtab-goals")
    page.wait_for_selector("#goals-view[data-state=ready]")
    assert page.locator("#outbound-view").is_hidden()
    assert page.locator("li.goal .goal-name").first.text_content().startswith("Amazon click")

    page.click("#goal-new")
    dialog = page.locator("#goal-dialog")
    dialog.wait_for()
    # Field choices follow the type; all eight operators are offered.
    page.select_option("#goal-type", "pageview")
    assert dialog.locator(".cond-field option").all_text_contents() == ["Page path"]
    page.select_option("#goal-type", "click")
    assert dialog.locator(".cond-field option").evaluate_all("os => os.map(o => o.value)") == [
        "domain", "url", "text", "title", "asin"]
    assert dialog.locator(".cond-operator option").count() == 8

    page.fill("#goal-name", "Stripe click")
    first = dialog.locator("li.condition").nth(0)
    first.locator(".cond-field").select_option("domain")
    first.locator(".cond-operator").select_option("equals")
    page.click("#goal-form button[type=submit]")  # no value: the API says 400, field named
    page.wait_for_selector("#goal-error:not([hidden])")
    assert "needs a value" in page.locator("#goal-error").text_content()
    assert first.locator(".cond-value").get_attribute("aria-invalid") == "true"
    assert dialog.is_visible()

    first.locator(".cond-value").fill("stripe.com")
    page.click("#goal-add-condition")
    second = dialog.locator("li.condition").nth(1)
    second.locator(".cond-field").select_option("text")
    second.locator(".cond-operator").select_option("contains")
    second.locator(".cond-value").fill("pay")
    page.select_option("#goal-logic", "any")
    page.uncheck("#goal-conversion")
    with page.expect_response(lambda r: r.url.endswith("/api/goals")
                              and r.request.method == "POST") as created:
        page.click("#goal-form button[type=submit]")
    assert created.value.status == 201
    page.wait_for_selector("li.goal:has-text('Stripe click')")
    assert dialog.is_hidden()
    goal = next(g for g in served.api("/api/goals")["results"] if g["name"] == "Stripe click")
    assert goal["type"] == "click" and goal["logic"] == "any" and not goal["is_conversion"]
    assert goal["conditions"] == [
        {"field": "domain", "operator": "equals", "value": "stripe.com"},
        {"field": "text", "operator": "contains", "value": "pay"}]
    item = page.locator(f"li.goal[data-goal-id='{goal['id']}']")
    assert item.locator(".goal-rule").text_content() == 'Domain is “stripe.com” or Link text ' \
        'contains “pay”'

    item.get_by_role("button", name="Edit").click()  # edit: rename, save with PUT
    page.fill("#goal-name", "Stripe or pay")
    page.click("#goal-form button[type=submit]")
    page.wait_for_selector("li.goal:has-text('Stripe or pay')")
    item.get_by_role("button", name="Delete").click()  # arms
    item.get_by_role("button", name="Confirm delete").click()
    item.wait_for(state="detached")
    assert [g["name"] for g in served.api("/api/goals")["results"]] == ["Amazon click"]


# ---- Date range ----------------------------------------------------------------------------------


def test_the_date_range_picker_changes_every_request(page: Any, served: Served) -> None:
    open_dashboard(page, served)
    assert page.locator("#period").input_value() == "30d"
    with page.expect_request(lambda r: "/api/kpis?period=7d" in r.url), \
            page.expect_request(lambda r: "/api/outbound-links?period=7d" in r.url), \
            page.expect_request(lambda r: "/api/sessions?period=7d" in r.url):
        page.select_option("#period", "7d")
    wait_ready(page)
    assert page.url.endswith("/dashboard?period=7d")
    assert page.locator("[data-kpi=pageviews] .kpi-value").text_content() == "7"

    page.select_option("#period", "custom")
    page.fill("#period-from", "2020-01-01")
    page.fill("#period-to", "2020-01-31")
    with page.expect_request(lambda r: "/api/kpis?from=2020-01-01&to=2020-02-01" in r.url):
        page.click("#period-form button[type=submit]")  # the last day is included
    wait_ready(page)
    assert page.locator("[data-kpi=visitors] .kpi-value").text_content() == "0"
    assert page.locator("#outbound-empty").text_content() == "No outbound clicks in this period."
    assert page.locator("#sessions-empty").is_visible()

    page.reload()  # the range is kept in the address
    wait_ready(page)
    assert page.locator("#period").input_value() == "custom"
    assert page.locator("#period-to").input_value() == "2020-01-31"
