from __future__ import annotations

import pytest

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
