from __future__ import annotations

import pathlib

import pytest

from services.core.settings import QueueSync, Settings, SettingsError, StoreKind, TransportKind


def test_defaults_are_the_embedded_mode() -> None:
    settings = Settings.from_env({})
    assert settings.transport is TransportKind.MEMORY
    assert settings.store is StoreKind.CHDB
    assert settings.data_dir == pathlib.Path(".clickport")


def test_enums_and_numbers_are_parsed() -> None:
    settings = Settings.from_env({"CLICKPORT_TRANSPORT": "KAFKA", "CLICKPORT_STORE": "clickhouse",
                                  "CLICKPORT_RATE_LIMIT_PER_MINUTE": "0",
                                  "CLICKPORT_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16"})
    assert settings.transport is TransportKind.KAFKA
    assert settings.store is StoreKind.CLICKHOUSE
    assert settings.rate_limit_per_minute == 0
    assert settings.trusted_proxies == ("10.0.0.1", "10.1.0.0/16")
    assert Settings.from_env({}).queue_sync is QueueSync.NORMAL
    assert Settings.from_env({"CLICKPORT_QUEUE_SYNC": "full"}).queue_sync is QueueSync.FULL


@pytest.mark.parametrize(("var", "value"), [
    ("CLICKPORT_TRANSPORT", "rabbitmq"),
    ("CLICKPORT_STORE", "postgres"),
    ("CLICKPORT_QUEUE_SYNC", "sometimes"),
    ("CLICKPORT_PORT", "99999"),
    ("CLICKPORT_BATCH_MAX_SECONDS", "soon"),
    ("CLICKPORT_BOT_FILTER", "maybe"),
])
def test_a_bad_value_fails_naming_the_variable(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=var):
        Settings.from_env({var: value})


def test_secrets_are_masked_in_repr() -> None:
    settings = Settings.from_env({"CLICKPORT_VISITOR_SALT_SECRET": "hunter2",
                                  "CLICKPORT_CLICKHOUSE_URL": "clickhouse://u:pw@h/db"})
    text = repr(settings)
    assert "hunter2" not in text and "pw@" not in text
    assert "visitor_salt_secret='***'" in text


def test_a_bad_trusted_proxy_fails_at_start() -> None:
    with pytest.raises(SettingsError, match="CLICKPORT_TRUSTED_PROXIES"):
        Settings.from_env({"CLICKPORT_TRUSTED_PROXIES": "10.0.0.1, not-an-ip"})


def test_read_timeouts_reach_uvicorn() -> None:
    from services.cli import UVICORN_OPTIONS, uvicorn_options
    from services.core.http_timeouts import ReadTimeoutProtocol

    settings = Settings.from_env({"CLICKPORT_HEADER_TIMEOUT_SECONDS": "2.5",
                                  "CLICKPORT_BODY_TIMEOUT_SECONDS": "1",
                                  "CLICKPORT_KEEP_ALIVE_SECONDS": "7"})
    options = uvicorn_options(settings)
    assert issubclass(options["http"], ReadTimeoutProtocol)
    assert (options["http"].header_timeout, options["http"].body_timeout) == (2.5, 1.0)
    assert options["timeout_keep_alive"] == 7
    defaults = Settings.from_env({})
    assert UVICORN_OPTIONS["timeout_keep_alive"] == defaults.keep_alive_seconds == 5
    assert (ReadTimeoutProtocol.header_timeout, ReadTimeoutProtocol.body_timeout) == (
        defaults.header_timeout_seconds, defaults.body_timeout_seconds)
    with pytest.raises(SettingsError, match="CLICKPORT_HEADER_TIMEOUT_SECONDS"):
        Settings.from_env({"CLICKPORT_HEADER_TIMEOUT_SECONDS": "0"})
