"""Look-alike destinations (issue #9, item 10): ``аmazon.com`` with a Cyrillic ``а`` looked
exactly like amazon.com in the Outbound report. Clicks posted through ``POST /api/event``
the way they were found, with the Unicode host in the URL (and once as a browser sends it,
in punycode): the report shows the domain in punycode with its Unicode form, flags the
look-alikes, and leaves a plain internationalised domain unflagged."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import click, new_sid

from services.core import sites as site_rules

from .dataset import Loaded, wait_for

SITE = "idn.test"
CLICKS = [
    "https://аmazon.com/x",  # Cyrillic а among Latin letters
    "https://www.аmazon.com/y",
    "https://münchen.de/rathaus",  # Latin with an umlaut: internationalised, not a look-alike
    "https://xn--80ak6aa92e.com/",  # аррӏе.com, all Cyrillic, as a browser's URL writes it
    "https://stripe.com/pay",
]


@pytest.fixture(scope="module")
def idn_site(loaded: Loaded) -> str:
    _, key = site_rules.add_site(loaded.parts.store, SITE)
    loaded.parts.known_sites.add(SITE)
    sid = new_sid()
    for url in CLICKS:
        loaded.post_beacon(click(sid, url, domain=SITE, url=f"https://{SITE}/"), 1)
    assert wait_for(lambda: loaded.stored_events_of(SITE) == len(CLICKS), 20.0)
    return key


def by_domain(loaded: Loaded, key: str, **params: str) -> dict[str, dict[str, Any]]:
    response = loaded.get("/api/outbound-links", key, period="7d", **params)
    assert response.status_code == 200, response.text
    return {row["domain"]: row for row in response.json()["results"]}


def flags(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["idn"], row["unicode"], row["mixed_script"], row["confusable"]


def test_a_cyrillic_a_in_amazon_is_shown_as_punycode_and_flagged(loaded: Loaded,
                                                                 idn_site: str) -> None:
    rows = by_domain(loaded, idn_site)
    assert set(rows) == {"xn--mazon-3ve.com", "xn--mnchen-3ya.de", "xn--80ak6aa92e.com",
                         "stripe.com"}
    assert rows["xn--mazon-3ve.com"]["clicks"] == 2  # www. and not, one domain
    assert flags(rows["xn--mazon-3ve.com"]) == (True, "аmazon.com", True, False)
    assert flags(rows["xn--80ak6aa92e.com"]) == (True, "аррӏе.com", False, True)
    assert flags(rows["xn--mnchen-3ya.de"]) == (True, "münchen.de", False, False)
    assert flags(rows["stripe.com"]) == (False, "stripe.com", False, False)


def test_drilling_into_an_idn_domain_by_either_form(loaded: Loaded, idn_site: str) -> None:
    for asked in ("xn--mnchen-3ya.de", "münchen.de", "www.MÜNCHEN.de"):
        rows = by_domain(loaded, idn_site, domain=asked)
        assert set(rows) == {"xn--mnchen-3ya.de"}, asked
        assert flags(rows["xn--mnchen-3ya.de"]) == (True, "münchen.de", False, False)
    urls = loaded.get("/api/outbound-links", idn_site, period="7d",
                      domain="xn--mazon-3ve.com").json()["results"]
    assert sorted(r["url"] for r in urls) == ["https://www.аmazon.com/y", "https://аmazon.com/x"]
    assert all(r["mixed_script"] and r["unicode"] == "аmazon.com" for r in urls)
