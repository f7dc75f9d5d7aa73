"""The ``clickport`` command line (PRODUCT.md O4). Settings come from ``CLICKPORT_*``
environment variables, read once here; flags override the few that have one."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from services.cli_errors import CliError
from services.core.settings import Settings, SettingsError, StoreKind

# How every service runs under uvicorn. No access log: it halves the request rate of a small
# endpoint (ARCHITECTURE.md). No proxy headers: uvicorn would otherwise take the client
# address from X-Forwarded-For whenever the peer is 127.0.0.1, before ingest applies
# CLICKPORT_TRUSTED_PROXIES, the one setting that decides whose header is believed. The
# protocol is uvicorn's httptools one with header and body read timeouts, which uvicorn
# lacks (services/core/http_timeouts.py); these are the default timeouts, `uvicorn_options`
# the configured ones.
UVICORN_OPTIONS: dict[str, Any] = {"access_log": False, "log_level": "warning",
                                   "proxy_headers": False,
                                   "http": "services.core.http_timeouts:ReadTimeoutProtocol",
                                   "timeout_keep_alive": Settings.keep_alive_seconds}


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """UVICORN_OPTIONS with the timeouts of ``settings``."""
    from services.core.http_timeouts import read_timeout_protocol

    protocol = read_timeout_protocol(settings.header_timeout_seconds,
                                     settings.body_timeout_seconds)
    return {**UVICORN_OPTIONS, "http": protocol, "timeout_keep_alive": settings.keep_alive_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"clickport: bad setting: {exc}", file=sys.stderr)
        return 2
    handler: Callable[[Settings, argparse.Namespace], int] = args.handler
    try:
        return handler(settings, args)
    except CliError as exc:
        print(f"clickport: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clickport", description="Outbound-link analytics: tracker, ingest, sessionizer, API.")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run everything in one process (embedded default)")
    dev.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    dev.add_argument("--port", type=int, default=None, help="port (default 8000)")
    dev.set_defaults(handler=run_dev)

    for name, about in (("ingest", "serve POST /api/event and the tracker, publishing to Kafka"),
                        ("sessionizer", "consume events from Kafka into the Store (one worker)"),
                        ("api", "serve the query API and dashboard from the Store")):
        service = commands.add_parser(name, help=about, description=about)
        service.add_argument("--host", default=None, help="address (default CLICKPORT_HOST)")
        service.add_argument("--port", type=int, default=None,
                             help="port (default CLICKPORT_PORT)")
        service.set_defaults(handler=run_service, service=name)

    kafka = commands.add_parser("kafka", help="Kafka administration").add_subparsers(
        dest="kafka_command", required=True)
    topics = kafka.add_parser("create-topics", help="create the events topic and its dead-letter "
                                                   "topic <topic>.dlq (idempotent)")
    topics.add_argument("--partitions", type=int, default=None,
                        help="partition count (default CLICKPORT_KAFKA_PARTITIONS)")
    topics.add_argument("--replication", type=int, default=1, help="replication factor")
    topics.set_defaults(handler=run_create_topics)

    migrate = commands.add_parser("migrate", help="apply the ClickHouse migrations")
    migrate.set_defaults(handler=run_migrate)

    sites = commands.add_parser("sites", help="manage sites").add_subparsers(
        dest="sites_command", required=True)
    add = sites.add_parser("add", help="register a site and print its API key")
    add.add_argument("domain")
    add.add_argument("--timezone", default="UTC", help="IANA time zone for reports (default UTC)")
    add.set_defaults(handler=run_sites_add)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True)
    create = keys.add_parser("create", help="create another key for a site")
    create.add_argument("domain")
    create.set_defaults(handler=run_keys_create)
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key")
    revoke.set_defaults(handler=run_keys_revoke)

    from services.dead_letter_commands import add_commands  # it imports this module's helpers
    from services.queue_commands import add_commands as add_queue_commands

    add_commands(commands)
    add_queue_commands(commands)
    return parser


def run_dev(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from services.embedded.app import build_embedded_app
    from services.embedded.runtime import DataDirBusy, claim, publish_runtime

    host = args.host or settings.host
    port = args.port or settings.port
    try:
        lock = claim(settings.data_dir)
    except DataDirBusy as exc:
        raise CliError(str(exc)) from None
    runtime = publish_runtime(settings.data_dir, host, port)
    app = build_embedded_app(settings, runtime)

    try:
        uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))
    finally:
        lock.close()
    return 0


def run_service(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from services.servers.common import ConfigurationError, make_store, make_transport

    host, port = args.host or settings.host, args.port or settings.port
    app: Any
    try:
        if args.service == "api":
            from services.servers.api_server import build_api_app

            app = build_api_app(make_store(settings))
        elif args.service == "ingest":
            from services.servers.ingest_server import build_ingest_app

            app = build_ingest_app(settings, make_transport(settings), make_store(settings))
        else:
            from services.servers.sessionizer_server import build_sessionizer_app

            app = build_sessionizer_app(settings, make_transport(settings), make_store(settings))
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None
    uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=20,
                **uvicorn_options(settings))
    return 0


def run_create_topics(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from services.adapters.kafka_dead_letters import dead_letter_topic
    from services.adapters.kafka_transport import (
        DEAD_LETTER_PARTITIONS,
        create_dead_letter_topic,
        create_topic,
    )

    partitions = args.partitions or settings.kafka_partitions
    created = asyncio.run(create_topic(settings.kafka_bootstrap, settings.kafka_topic,
                                       partitions, args.replication))
    state = "created" if created else "already exists"
    print(f"topic {settings.kafka_topic} ({partitions} partitions): {state}")
    created = asyncio.run(create_dead_letter_topic(settings.kafka_bootstrap,
                                                   settings.kafka_topic, args.replication))
    state = "created" if created else "already exists"
    print(f"topic {dead_letter_topic(settings.kafka_topic)} "
          f"({DEAD_LETTER_PARTITIONS} partition, kept until replayed or dropped): {state}")
    return 0


def _via_running_dev(settings: Settings, path: str, method: str, body: Mapping[str, Any]
                     ) -> Any:
    """Send a write to the running ``clickport dev`` that holds the data directory."""
    from services.embedded.runtime import read_runtime

    runtime = read_runtime(settings.data_dir)
    request = urllib.request.Request(
        f"http://{runtime.host}:{runtime.port}{path}", data=json.dumps(body).encode(),
        method=method, headers={"x-admin-token": runtime.admin_token,
                                "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise CliError(json.loads(exc.read()).get("error", str(exc))) from None
    except urllib.error.URLError as exc:
        raise CliError(
            f"clickport dev holds {settings.data_dir} but did not answer: {exc}") from None


def _write(settings: Settings, path: str, method: str, body: dict[str, str],
           direct: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    from services.core.sites import SiteError
    from services.embedded.runtime import is_claimed

    # Through a running dev on either Store: it holds chDB, and it adds a new site to the
    # sites its ingest accepts at once (a direct write reaches it on its next 5 s refresh).
    if is_claimed(settings.data_dir):
        result: dict[str, Any] = _via_running_dev(settings, path, method, body)
        return result
    store = _store_for(settings)
    try:
        return direct(store)
    except SiteError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()


def _store_for(settings: Settings, *, migrate: bool = True) -> Any:
    from services.servers.common import make_store

    store = make_store(settings)
    if migrate:
        store.migrate()
    return store


def run_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from services.embedded.runtime import is_claimed

    if settings.store is StoreKind.CHDB and is_claimed(settings.data_dir):
        print("clickport dev is running and has applied the migrations at start")
        return 0
    store = _store_for(settings, migrate=False)
    try:
        applied = store.migrate()
    finally:
        store.close()
    print("applied: " + ", ".join(applied) if applied else "nothing to apply")
    return 0


def run_sites_add(settings: Settings, args: argparse.Namespace) -> int:
    from services.core.sites import add_site

    def direct(store: Any) -> dict[str, Any]:
        site, key = add_site(store, args.domain, args.timezone)
        return {"domain": site.domain, "timezone": site.timezone, "key": key}

    result = _write(settings, "/admin/sites", "POST",
                    {"domain": args.domain, "timezone": args.timezone}, direct)
    print(f"site {result['domain']} ({result['timezone']})\napi key: {result['key']}")
    return 0


def run_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from services.core.sites import create_key

    result = _write(settings, "/admin/keys", "POST", {"domain": args.domain},
                    lambda store: {"key": create_key(store, args.domain)})
    print(f"api key: {result['key']}")
    return 0


def run_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from services.core.sites import revoke_key

    result = _write(settings, "/admin/keys", "DELETE", {"key": args.key},
                    lambda store: {"site": revoke_key(store, args.key)})
    print(f"revoked a key of {result['site']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
