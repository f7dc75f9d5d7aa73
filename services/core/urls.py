"""URL rules shared by ingest and tests: site-host normalisation, destination domain, ASIN,
path and UTM extraction. Pure functions over strings.

A domain is kept as DNS has it: `ascii_host` writes an internationalised host in punycode
(``аmazon.com`` with a Cyrillic ``а`` is ``xn--mazon-3ve.com``), so a look-alike of another
domain is stored and shown as the different domain it is. Browsers already send such hosts
in punycode (``new URL(href).href``); a beacon written by other means may not.

Ingest reads several parts of the same URL, so `split` parses a URL once into `UrlParts`
and the ``*_of`` functions read those parts; the string functions are the same rules for
callers holding only the URL.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

import idna

_ASIN_IN_PATH = re.compile(r"/(?:dp|gp/product)/([A-Za-z0-9]{10})(?:[/?#]|$)")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# The common web URL: printable ASCII, a lower-case http(s) scheme, a plain host (no user
# info, no IPv6 brackets, no percent) and an optional numeric port. For these `urlsplit`
# strips, removes and checks nothing, so the parts can be cut out directly (urlsplit costs
# about 5 us per URL it has not cached).
_PLAIN_WEB_URL = re.compile(r"(https?)://([A-Za-z0-9.-]*)(?::[0-9]*)?([/?#][!-~]*)?", re.ASCII)


class UrlParts(NamedTuple):
    scheme: str  # lower-cased
    hostname: str  # as urlsplit's ``.hostname``, "" when there is none
    path: str
    query: str


NO_PARTS = UrlParts("", "", "", "")  # a malformed URL: no host, path "/", no parameters


@functools.lru_cache(maxsize=256)  # a site's pages recur (urlsplit itself caches 128 URLs)
def split(url: str) -> UrlParts:
    """The parts of ``url`` as `urllib.parse.urlsplit` reads them; `NO_PARTS` when malformed."""
    plain = _PLAIN_WEB_URL.fullmatch(url)
    if plain is not None:
        scheme, host, rest = plain.group(1, 2, 3)
        rest = (rest or "").partition("#")[0]
        path, _, query = rest.partition("?")
        return UrlParts(scheme, host.lower(), path, query)
    try:
        parts = urlsplit(url)
    except ValueError:
        return NO_PARTS
    return UrlParts(parts.scheme, parts.hostname or "", parts.path, parts.query)


def strip_www(host: str) -> str:
    """Lower-case a host and remove one leading ``www.``: ``www.Example.com`` -> ``example.com``."""
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def hostname(url: str) -> str:
    """The URL's host name, lower-cased, or "" when the URL has none or is malformed."""
    return split(url).hostname


def destination_domain(url: str) -> str:
    return destination_domain_of(split(url))


def destination_domain_of(parts: UrlParts) -> str:
    """A click's destination domain: its host in ASCII (`ascii_host`) without one leading
    ``www.``."""
    return strip_www(ascii_host(parts.hostname))


def ascii_host(host: str) -> str:
    """``host`` with every internationalised label in punycode, lower-cased, by UTS 46 /
    IDNA 2008 (non-transitional, as browsers map: ``straße.de`` stays distinct from
    ``strasse.de``); "" when it cannot be encoded. An ASCII host is returned as it is."""
    return host if host.isascii() else _encoded_host(host)


@functools.lru_cache(maxsize=1024)
def _encoded_host(host: str) -> str:
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        pass
    # IDNA 2008 refuses symbols (an emoji host) that browsers still resolve through UTS 46's
    # looser table; the standard library's IDNA 2003 codec encodes those the same way.
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""


def is_web_url(url: str) -> bool:
    return is_web_url_of(split(url))


def is_web_url_of(parts: UrlParts) -> bool:
    """An http(s) URL with a host that can be written in DNS's ASCII form."""
    return parts.scheme in ("http", "https") and bool(ascii_host(parts.hostname))


def amazon_asin(url: str) -> str:
    """The upper-cased ASIN of an Amazon product URL (``/dp/X`` or ``/gp/product/X``), or ""."""
    return amazon_asin_of(split(url))


def amazon_asin_of(parts: UrlParts) -> str:
    if "amazon" not in parts.hostname:
        return ""
    found = _ASIN_IN_PATH.search(parts.path)
    return found.group(1).upper() if found else ""


def path_of(parts: UrlParts) -> str:
    return parts.path or "/"


def utm_params(url: str) -> dict[str, str]:
    """The ``utm_*`` parameters of a page URL (first value of each, at most 200 chars)."""
    return utm_params_of(split(url))


def utm_params_of(parts: UrlParts) -> dict[str, str]:
    query = parts.query
    if "utm_" not in query and "%" not in query:  # no key can decode to a utm_* name
        return {}
    found: dict[str, str] = {}
    for key, value in _query_pairs(query):
        if key in UTM_KEYS and key not in found:
            found[key] = value[:200]
    return found


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query)`` (blank values left out); split by hand when nothing in the query
    needs unquoting, which is the common case and several times cheaper."""
    if "%" in query or "+" in query:
        return parse_qsl(query)
    pairs = []
    for field in query.split("&"):
        key, equals, value = field.partition("=")
        if equals and value:
            pairs.append((key, value))
    return pairs
