"""``clickport queue check|repair``: the embedded queue file of ``clickport dev``
(``CLICKPORT_DATA_DIR/queue.sqlite3``), checked with SQLite's own ``integrity_check`` and,
when damaged, replaced by a fresh file holding every row that can still be read
(services/adapters/disk_queue_repair.py; docs/operations.md, "A corrupt embedded queue")."""

from __future__ import annotations

import argparse
import pathlib
from typing import TYPE_CHECKING, Any

from services.cli_errors import CliError
from services.core.settings import Settings

if TYPE_CHECKING:
    from services.adapters.disk_queue_repair import Inspection

_PROBLEMS_SHOWN = 5


def add_commands(commands: Any) -> None:
    about = "check or repair the embedded queue file of clickport dev (queue.sqlite3)"
    queue = commands.add_parser("queue", help=about, description=about).add_subparsers(
        dest="queue_command", required=True)
    check = queue.add_parser(
        "check", help="SQLite's integrity check and how many rows can be read; exits 1 when "
                      "the file is damaged", description="SQLite's integrity check of the "
                      "queue file and how many of its messages and dead letters can be read")
    check.set_defaults(handler=run_check)
    repair = queue.add_parser(
        "repair", help="move a damaged queue file aside and salvage every readable message "
                       "and dead letter into a fresh one (clickport dev must be stopped)",
        description="move a damaged queue file aside (with a timestamp) and write a fresh one "
                    "holding every message not consumed yet and every dead letter that can "
                    "still be read; new events go on a new stream")
    repair.set_defaults(handler=run_repair)


def queue_path(settings: Settings) -> pathlib.Path:
    path = settings.data_dir / "queue.sqlite3"
    if not path.exists():
        raise CliError(f"no embedded queue at {path} (is CLICKPORT_DATA_DIR right?)")
    return path


def run_check(settings: Settings, args: argparse.Namespace) -> int:
    from services.adapters.disk_queue_repair import inspect

    found = inspect(queue_path(settings))
    print(f"{found.path}: {'ok' if found.intact else 'damaged'}")
    for problem in found.problems[:_PROBLEMS_SHOWN]:
        print(f"  integrity_check: {problem}")
    if len(found.problems) > _PROBLEMS_SHOWN:
        print(f"  ... and {len(found.problems) - _PROBLEMS_SHOWN} more")
    print("  readable: " + readable(found))
    if found.intact:
        return 0
    print("  to repair it: stop clickport dev, then run `clickport queue repair` (it keeps the "
          "damaged file)")
    return 1


def readable(found: Inspection) -> str:
    """What can be read: of how many, when the file is damaged (offsets are handed out one
    by one, so the group's offset and the head say how many messages wait)."""
    expected = found.expected_unconsumed
    unconsumed = len(found.unconsumed)
    messages = (f"{unconsumed} unconsumed messages" if found.intact
                else f"{unconsumed} of {expected} unconsumed messages" if expected is not None
                else f"{unconsumed} unconsumed messages (of how many cannot be read)")
    letters = f"{len(found.dead_letters)} dead letters"
    groups = ("group offsets unreadable" if found.groups is None
              else ", ".join(f"group {g} at offset {o}" for g, o in sorted(found.groups.items()))
              or "nothing committed yet")
    return f"{messages}, {letters} ({groups})"


def run_repair(settings: Settings, args: argparse.Namespace) -> int:
    from services.adapters.disk_queue_repair import inspect, repair
    from services.embedded.runtime import DataDirBusy, claim

    path = queue_path(settings)
    try:
        lock = claim(settings.data_dir)  # held throughout: no clickport dev starts meanwhile
    except DataDirBusy as exc:
        raise CliError(f"{exc}: stop it first (the queue belongs to it)") from None
    try:
        if inspect(path).intact:
            print(f"{path} is intact: nothing to repair")
            return 0
        done = repair(path)
    finally:
        lock.close()
    print(f"moved the damaged file to {done.moved_to}")
    print(f"salvaged into a fresh {path}: {readable(done.found)}")
    lost = (done.found.expected_unconsumed or 0) - done.salvaged
    if lost > 0:
        print(f"  {lost} unconsumed messages could not be read: those events are lost")
    print(f"new events go on a new stream from offset {done.new_stream_from}, so that none is "
          "taken for a replay of an event stored before the damage")
    if done.salvaged and not done.streams_kept:
        print("  the old streams could not be read: salvaged messages the Store already had "
              "(at most the last uncommitted batch) may be counted twice")
    return 0
