from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core import urls


@pytest.mark.parametrize(("url", "domain"), [
    ("https://www.stripe.com/x", "stripe.com"),
    ("https://stripe.com/y", "stripe.com"),
    ("https://blog.example.com/", "blog.example.com"),
    ("https://WWW.Example.COM:8443/a", "example.com"),
    ("https://www.www.example.com/", "www.example.com"),
    ("not a url", ""),
])
def test_destination_domain_strips_one_www(url: str, domain: str) -> None:
    assert urls.destination_domain(url) == domain


@pytest.mark.parametrize(("url", "asin"), [
    ("https://www.amazon.com/dp/B07FZ8S74R", "B07FZ8S74R"),
    ("https://www.amazon.de/gp/product/b00x4whp5e/ref=x", "B00X4WHP5E"),
    ("https://amazon.co.uk/Some-Name/dp/B01N5IB20Q?tag=x", "B01N5IB20Q"),
    ("https://example.com/dp/B07FZ8S74R", ""),
    ("https://www.amazon.com/dp/SHORT", ""),
])
def test_amazon_asin(url: str, asin: str) -> None:
    assert urls.amazon_asin(url) == asin


def test_utm_params_are_taken_from_the_page_url() -> None:
    found = urls.utm_params("https://e.com/?utm_source=news&utm_medium=mail&x=1&utm_source=b")
    assert found == {"utm_source": "news", "utm_medium": "mail"}


@pytest.mark.parametrize(("url", "ok"), [
    ("https://a.com/", True), ("http://a.com", True), ("mailto:a@b.c", False),
    ("javascript:alert(1)", False), ("https://", False), ("ftp://a.com/", False),
])
def test_is_web_url(url: str, ok: bool) -> None:
    assert urls.is_web_url(url) is ok


def reference_parts(url: str) -> urls.UrlParts:
    """What `urls.split` must return: urlsplit's reading, all empty when it raises."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return urls.NO_PARTS
    return urls.UrlParts(parts.scheme, parts.hostname or "", parts.path, parts.query)


def reference_utm(query: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in parse_qsl(query):
        if key in urls.UTM_KEYS and key not in found:
            found[key] = value[:200]
    return found


PIECES = ["/", "?", "#", "&", "=", "+", "%", "%5F", "@", "[", "]", "::1", ":", ":8080", "www.",
          "Example.COM", "a.b", "utm_source", "utm_medium", "x", "\t", "\n", " ", "\x00", "é",
          "\\", ".", "-", "0"]
URLS = st.tuples(
    st.sampled_from(["https://", "http://", "HTTPS://", "ftp://", "https:", "https:///", "//", ""]),
    st.lists(st.sampled_from(PIECES), max_size=6).map("".join),
    st.lists(st.sampled_from(PIECES), max_size=10).map("".join),
).map("".join)


@given(URLS)
@settings(max_examples=1000)
def test_split_reads_urls_as_urlsplit_does(url: str) -> None:
    assert urls.split(url) == reference_parts(url)
    assert urls.utm_params(url) == reference_utm(reference_parts(url).query)


@given(st.text(max_size=60))
def test_split_of_any_text_matches_urlsplit(text: str) -> None:
    for url in (text, "https://" + text, "http://a.com/" + text):
        assert urls.split(url) == reference_parts(url)
        assert urls.utm_params(url) == reference_utm(reference_parts(url).query)


@pytest.mark.parametrize("url", [
    "https://shop.example.com/p?utm_source=a&utm_source=b&utm_medium=&utm_campaign=c=d",
    "https://e.com/?utm%5Fsource=x&utm_term=a+b&utm_content=%E2%9C%93",
    "https://e.com/?utm_source=" + "v" * 300, "https://e.com/#?utm_source=frag",
    "https://[::1]:80/?utm_source=v6", "https://user@e.com/?utm_source=u", "https://e.com:x/",
])
def test_utm_params_match_parse_qsl(url: str) -> None:
    assert urls.utm_params(url) == reference_utm(reference_parts(url).query)


@pytest.mark.parametrize(("url", "domain"), [
    ("https://аmazon.com/x", "xn--mazon-3ve.com"),  # a Cyrillic а
    ("https://xn--mazon-3ve.com/x", "xn--mazon-3ve.com"),  # as a browser writes it
    ("https://www.münchen.de/", "xn--mnchen-3ya.de"),
    ("https://MÜNCHEN.de/", "xn--mnchen-3ya.de"),
    ("https://straße.de/", "xn--strae-oqa.de"),  # IDNA 2008: not strasse.de (IDNA 2003)
    ("https://ＷＷＷ．example.com/", "example.com"),  # UTS 46 maps full-width forms
    ("https://i❤.ws/", "xn--i-7iq.ws"),  # a symbol IDNA 2008 refuses and browsers resolve
])
def test_destination_domains_are_in_punycode(url: str, domain: str) -> None:
    assert urls.destination_domain(url) == domain
    assert urls.is_web_url(url)


def test_a_host_that_has_no_dns_form_is_not_a_web_url() -> None:
    assert urls.ascii_host("\u202e.com") == ""  # a bidi control: no IDNA accepts it
    assert not urls.is_web_url("https://\u202e.com/")
    assert urls.ascii_host("Example.COM") == "Example.COM"  # ASCII is left as it is
