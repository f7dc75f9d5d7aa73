"""``clickport dlq list|replay|drop``: the dead letters of the configured transport (Kafka's
``<topic>.dlq``, or the embedded queue's ``dead_letters`` table). While ``clickport dev``
holds the data directory they go through it (its admin route), as ``sites add`` does.

replay and drop act on every pending entry, or on those up to ``--upto ID`` (ids grow in the
order entries were set aside, so "up to the last one listed" is exact)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.cli import _via_running_dev
from services.cli_errors import CliError
from services.core.dead_letters import letter_json
from services.core.settings import Settings, TransportKind
from services.core.transport import DeadLetters, TransportError

_DETAIL_SHOWN = 160


def add_commands(commands: Any) -> None:
    about = ("inspect, replay or drop dead letters: events of batches the Store refused, and "
             "corrupt messages (replay and drop act on every pending entry, or on those up to "
             "--upto ID)")
    dlq = commands.add_parser("dlq", help=about, description=about).add_subparsers(
        dest="dlq_command", required=True)

    def command(name: str, about: str, handler: Any) -> Any:
        parser = dlq.add_parser(name, help=about, description=about)
        parser.set_defaults(handler=handler)
        return parser

    listing = command("list", "show the pending dead letters, oldest first: id, reason, where "
                              "the message was, when it was set aside, its event", run_list)
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    replay = command("replay", "after fixing the cause: publish the pending dead letters (all, "
                               "or up to --upto ID) back onto the main stream and remove them "
                               "in the same step, so each is applied exactly once", run_replay)
    replay.add_argument("--upto", type=int, default=None, help="last entry id to replay")
    drop = command("drop", "discard the pending dead letters (all, or up to --upto ID) for "
                           "good; needs --yes", run_drop)
    drop.add_argument("--upto", type=int, default=None, help="last entry id to drop")
    drop.add_argument("--yes", action="store_true", help="really discard them")


def run_list(settings: Settings, args: argparse.Namespace) -> int:
    async def direct(letters: DeadLetters) -> dict[str, Any]:
        entries = await letters.entries(args.limit)
        return {"pending": await letters.pending(), "entries": [letter_json(e) for e in entries]}

    found = _act(settings, {"action": "list", "limit": args.limit}, direct)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    entries = found["entries"]
    print(f"{found['pending']} dead letters pending" + (
        f", the first {len(entries)}:" if entries and len(entries) < found["pending"] else
        ":" if entries else ""))
    for entry in entries:
        print("  " + describe(entry))
    return 0


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    async def direct(letters: DeadLetters) -> dict[str, Any]:
        return {"replayed": await letters.replay(args.upto)}

    done = _act(settings, {"action": "replay", "upto": args.upto}, direct)
    print(f"replayed {done['replayed']} dead letters onto the main stream"
          if done["replayed"] else "nothing to replay")
    return 0


def run_drop(settings: Settings, args: argparse.Namespace) -> int:
    if not args.yes:
        async def count(letters: DeadLetters) -> dict[str, Any]:
            return {"pending": await letters.pending(), "entries": []}

        pending = _act(settings, {"action": "list", "limit": 1}, count)["pending"]
        raise CliError(f"drop discards {pending} dead letters for good: run it again with "
                       "--yes (clickport dlq list shows them)")

    async def direct(letters: DeadLetters) -> dict[str, Any]:
        return {"dropped": await letters.drop(args.upto)}

    done = _act(settings, {"action": "drop", "upto": args.upto, "yes": True}, direct)
    print(f"dropped {done['dropped']} dead letters")
    return 0


def describe(entry: dict[str, Any]) -> str:
    """One entry on two lines: id, reason, origin, time and event; then the detail."""
    at = dt.datetime.fromtimestamp(entry["at_ms"] / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    event = entry["event"]
    shown = (" ".join(v for v in (event["kind"], event["site"], event["url"],
                                  event.get("click_url", "")) if v)
             if event else f"(undecodable, {entry['bytes']} bytes)")
    detail = entry["detail"].splitlines()[0] if entry["detail"] else ""
    if len(detail) > _DETAIL_SHOWN:
        detail = detail[:_DETAIL_SHOWN - 1] + "…"
    return (f"#{entry['id']}  {entry['reason']}  from {entry['partition']}/{entry['offset']}  "
            f"{at}  {shown}\n      {detail}")


def _act(settings: Settings, body: dict[str, Any],
         direct: Callable[[DeadLetters], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Through the running ``clickport dev`` when it holds the queue, else directly."""
    if settings.transport is TransportKind.KAFKA:
        from services.adapters.kafka_transport import KafkaTransport

        logging.getLogger("aiokafka").setLevel(logging.WARNING)  # its connection chatter
        transport = KafkaTransport(settings.kafka_bootstrap, settings.kafka_topic)
        return asyncio.run(_with(transport.dead_letters(), direct))
    from services.embedded.runtime import is_claimed

    if is_claimed(settings.data_dir):
        result: dict[str, Any] = _via_running_dev(settings, "/admin/dlq", "POST", body)
        return result
    path = settings.data_dir / "queue.sqlite3"
    if not path.exists():
        raise CliError(f"no embedded queue at {path} (is CLICKPORT_DATA_DIR right?)")
    return asyncio.run(_on_disk_queue(settings, direct))


async def _on_disk_queue(settings: Settings,
                         direct: Callable[[DeadLetters], Awaitable[dict[str, Any]]]
                         ) -> dict[str, Any]:
    from services.servers.common import make_disk_queue

    queue = make_disk_queue(settings)
    try:
        await queue.start()
    except TransportError as exc:
        raise CliError(f"{exc} (clickport queue check says more)") from None
    try:
        return await _with(queue.dead_letters(), direct)
    finally:
        await queue.stop()


async def _with(letters: DeadLetters,
                direct: Callable[[DeadLetters], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        return await direct(letters)
    except TransportError as exc:
        raise CliError(str(exc)) from None
    finally:
        await letters.close()
