"""Small builders for beacons and events used across the suites."""

from __future__ import annotations

import itertools
import os
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.core.event import Event


def docker_answers() -> bool:
    """True when a Docker engine answers (testcontainers can then start real services)."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # no engine, no socket, no permission: all mean "no Docker here"
        return False


def require_or_skip(env_var: str, reason: str) -> None:
    """Skip with a reason that says how to get the component, or fail when CI requires it
    (``CLICKPORT_REQUIRE_KAFKA=1``, ``CLICKPORT_REQUIRE_BROWSER=1``,
    ``CLICKPORT_REQUIRE_CLICKHOUSE=1``)."""
    if os.environ.get(env_var) == "1":
        pytest.fail(f"{reason} ({env_var}=1 turns this skip into a failure)")
    pytest.skip(reason)

# The Stores a test "on both Stores" is parametrised over: chDB in its data dir, and a
# ClickHouse server (the `clickhouse` fixture), each test module on a database of its own.
STORES = ["chdb", "clickhouse"]


def store_settings(request: pytest.FixtureRequest, prefix: str = "clickport_test"
                   ) -> dict[str, Any]:
    """The Settings overrides that put an app on the Store ``request.param`` names."""
    if request.param == "chdb":
        return {}
    from services.core.settings import StoreKind

    url = request.getfixturevalue("clickhouse").fresh_url(prefix)
    return {"store": StoreKind.CLICKHOUSE, "clickhouse_url": url}


def store_env(request: pytest.FixtureRequest, prefix: str = "clickport_test") -> dict[str, str]:
    """`store_settings` as ``CLICKPORT_*`` variables, for a ``clickport`` process."""
    return {f"CLICKPORT_{name.upper()}": getattr(value, "value", value)
            for name, value in store_settings(request, prefix).items()}


def wait_until(check: Callable[[], Any], seconds: float, what: str, step: float = 0.2) -> Any:
    """``check()``'s first truthy result, polled every ``step``; fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(step)
    return result


_ids = itertools.count(1)


def metric_value(prometheus_text: str, name: str) -> float:
    """The value of an unlabelled metric in a /metrics page."""
    for line in prometheus_text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def new_sid() -> str:
    return secrets.token_urlsafe(16)


def pageview(sid: str, url: str = "https://example.com/", domain: str = "example.com",
             **extra: Any) -> dict[str, Any]:
    return {"t": "p", "d": domain, "u": url, "sid": sid, **extra}


def click(sid: str, dest: str, text: str = "link", domain: str = "example.com",
          url: str = "https://example.com/", **extra: Any) -> dict[str, Any]:
    return {"t": "c", "d": domain, "u": url, "sid": sid, "cu": dest, "ct": text,
            "ck": "primary", **extra}


def engagement(sid: str, scroll: int, visible_ms: int, domain: str = "example.com",
               url: str = "https://example.com/") -> dict[str, Any]:
    return {"t": "e", "d": domain, "u": url, "sid": sid, "sd": scroll, "vt": visible_ms}


def event(kind: str = "pageview", sid: str = "s" * 22, site: str = "example.com",
          ts: int = 1_700_000_000_000, **fields: Any) -> Event:
    defaults: dict[str, Any] = {"url": "https://example.com/", "path": "/"}
    defaults.update(fields)
    return Event(id=uuid.uuid4().hex, site=site, sid=sid, ts=ts, kind=kind,  # type: ignore[arg-type]
                 **defaults)
