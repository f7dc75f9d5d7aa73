"""URL rules shared by ingest and tests: site-host normalisation, destination domain, ASIN,
path and UTM extraction. Pure functions over strings."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

_ASIN_IN_PATH = re.compile(r"/(?:dp|gp/product)/([A-Za-z0-9]{10})(?:[/?#]|$)")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def strip_www(host: str) -> str:
    """Lower-case a host and remove one leading ``www.``: ``www.Example.com`` -> ``example.com``."""
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def hostname(url: str) -> str:
    """The URL's host name, lower-cased, or "" when the URL has none or is malformed."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def destination_domain(url: str) -> str:
    """A click's destination domain: its host without one leading ``www.``."""
    return strip_www(hostname(url))


def is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def amazon_asin(url: str) -> str:
    """The upper-cased ASIN of an Amazon product URL (``/dp/X`` or ``/gp/product/X``), or ""."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if "amazon" not in (parts.hostname or ""):
        return ""
    found = _ASIN_IN_PATH.search(parts.path)
    return found.group(1).upper() if found else ""


def url_path(url: str) -> str:
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "/"


def utm_params(url: str) -> dict[str, str]:
    """The ``utm_*`` parameters of a page URL (first value of each, at most 200 chars)."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        if key in UTM_KEYS and key not in found:
            found[key] = value[:200]
    return found
