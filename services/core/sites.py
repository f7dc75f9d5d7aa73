"""Sites and API keys (PRODUCT.md A1, O4). A key is ``ck_`` + 32 URL-safe random chars,
shown once and stored as its SHA-256: keys are high-entropy, so a fast hash is enough and a
lookup by hash is one indexed read. Keys are compared in constant time after the lookup."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import zoneinfo
from dataclasses import dataclass

from services.core.store import Store

KEY_PREFIX = "ck_"
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$|^localhost$"
)


class SiteError(ValueError):
    """A site or key request that cannot be done (bad domain, unknown site, ...)."""


@dataclass(frozen=True)
class Site:
    domain: str
    timezone: str = "UTC"


def normalise_domain(domain: str) -> str:
    """``https://WWW.Example.com/`` -> ``example.com``; raises `SiteError` when not a domain."""
    text = domain.strip().lower()
    text = re.sub(r"^[a-z]+://", "", text).split("/")[0].split(":")[0]
    if text.startswith("www."):
        text = text[4:]
    if not _DOMAIN.match(text):
        raise SiteError(f"not a domain name: {domain!r}")
    return text


def check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SiteError(f"unknown time zone: {name!r}") from None
    return name


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def add_site(store: Store, domain: str, timezone: str = "UTC") -> tuple[Site, str]:
    """Register a site (idempotent for the domain) and create a new key for it."""
    site = Site(normalise_domain(domain), check_timezone(timezone))
    now = _now_ms()
    store.insert("sites", [{"domain": site.domain, "timezone": site.timezone,
                            "created_at": now, "version": time.time_ns(), "deleted": 0}])
    return site, create_key(store, site.domain)


def create_key(store: Store, domain: str) -> str:
    site = normalise_domain(domain)
    if get_site(store, site) is None:
        raise SiteError(f"unknown site: {site} (add it with: clickport sites add {site})")
    key = new_key()
    store.insert("api_keys", [{"key_hash": hash_key(key), "site_id": site, "key_prefix": key[:7],
                               "created_at": _now_ms(), "version": time.time_ns(),
                               "revoked": 0}])
    return key


def revoke_key(store: Store, key: str) -> str:
    row = _key_row(store, key)
    if row is None:
        raise SiteError("unknown key")
    store.insert("api_keys", [{"key_hash": row["key_hash"], "site_id": row["site_id"],
                               "key_prefix": row["key_prefix"], "created_at": _now_ms(),
                               "version": time.time_ns(), "revoked": 1}])
    return str(row["site_id"])


def site_for_key(store: Store, key: str) -> str | None:
    """The site a live key belongs to, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    row = _key_row(store, key)
    if row is None or row["revoked"]:
        return None
    if not hmac.compare_digest(str(row["key_hash"]), hash_key(key)):
        return None
    return str(row["site_id"])


def _key_row(store: Store, key: str) -> dict[str, object] | None:
    rows = store.query(
        "SELECT key_hash, site_id, key_prefix, revoked FROM api_keys FINAL "
        "WHERE key_hash = {h:String}",
        {"h": hash_key(key)},
    )
    return rows[0] if rows else None


def get_site(store: Store, domain: str) -> Site | None:
    rows = store.query(
        "SELECT domain, timezone FROM sites FINAL WHERE domain = {d:String} AND deleted = 0",
        {"d": domain},
    )
    return Site(rows[0]["domain"], rows[0]["timezone"]) if rows else None


def list_sites(store: Store) -> list[Site]:
    rows = store.query("SELECT domain, timezone FROM sites FINAL WHERE deleted = 0 ORDER BY domain")
    return [Site(r["domain"], r["timezone"]) for r in rows]


class KnownSites:
    """The registered domains, held in memory so ingest needs no query per beacon; the
    composition root reloads it every few seconds, so a new site is accepted soon after."""

    def __init__(self) -> None:
        self._domains: frozenset[str] = frozenset()

    def __contains__(self, domain: object) -> bool:
        return domain in self._domains

    def reload(self, store: Store) -> None:
        self._domains = frozenset(site.domain for site in list_sites(store))

    def add(self, domain: str) -> None:
        self._domains = self._domains | {domain}
