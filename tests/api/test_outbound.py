"""A2 outbound links over the loaded data set: domains by unique clicks (distinct sessions),
then clicks, then domain; www. variants are one domain; unique never exceeds clicks."""

from __future__ import annotations

from .dataset import A, Loaded


def rows_of(loaded: Loaded, key: str | None = None, **params: str) -> list[dict[str, object]]:
    response = loaded.get("/api/outbound-links", key, period="7d", **params)
    assert response.status_code == 200, response.text
    results: list[dict[str, object]] = response.json()["results"]
    return results


def test_domains_sort_by_unique_then_clicks_and_group_www(loaded: Loaded) -> None:
    rows = rows_of(loaded)
    assert [(r["domain"], r["clicks"], r["unique_clicks"]) for r in rows] == [
        ("stripe.com", 3, 2), ("amazon.com", 2, 2), ("demo.localhost", 1, 1)]
    assert all(int(r["unique_clicks"]) <= int(r["clicks"]) for r in rows)  # type: ignore[call-overload]


def test_example_is_the_domains_latest_click(loaded: Loaded) -> None:
    examples = {r["domain"]: (r["example_url"], r["example_text"]) for r in rows_of(loaded)}
    assert examples == {
        "stripe.com": ("https://stripe.com/z", "Pay"),
        "amazon.com": ("https://amazon.com/dp/B000000001", "Buy again"),
        "demo.localhost": (f"{A}/go/headphones?asin=B0000000X2", "Headphones"),
    }


def test_drill_into_a_domain_lists_its_urls(loaded: Loaded) -> None:
    rows = rows_of(loaded, domain="www.Amazon.com")
    assert [(r["url"], r["domain"], r["clicks"], r["unique_clicks"]) for r in rows] == [
        ("https://amazon.com/dp/B000000001", "amazon.com", 1, 1),
        ("https://www.amazon.com/dp/B000000001", "amazon.com", 1, 1)]


def test_each_key_sees_only_its_own_sites_clicks(loaded: Loaded) -> None:
    rows = rows_of(loaded, loaded.key_b)
    assert [(r["domain"], r["clicks"], r["unique_clicks"]) for r in rows] == [
        ("amazon.com", 1, 1), ("stripe.com", 1, 1)]
    assert loaded.get("/api/outbound-links", loaded.key_b).json()["site"] == "othersite.test"


def test_an_unknown_domain_is_an_empty_list(loaded: Loaded) -> None:
    assert rows_of(loaded, domain="nowhere.example") == []
