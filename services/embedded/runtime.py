"""What a running ``clickport dev`` leaves in its data directory so that CLI commands can
reach it: chDB and the disk queue belong to one process, so writes go through that process.

``dev.lock`` is held with ``flock`` for the life of the process (the OS releases it even on
``kill -9``); ``runtime.json`` holds the port and a per-run admin token (mode 0600).
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import secrets
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True)
class Runtime:
    host: str
    port: int
    admin_token: str


class DataDirBusy(RuntimeError):
    pass


def claim(data_dir: pathlib.Path) -> IO[str]:
    """Take the data directory for this process; raises `DataDirBusy` if another has it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "dev.lock", "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirBusy(f"{data_dir} is in use by a running clickport dev") from None
    return handle


def is_claimed(data_dir: pathlib.Path) -> bool:
    try:
        handle = claim(data_dir)
    except DataDirBusy:
        return True
    handle.close()
    return False


def publish_runtime(data_dir: pathlib.Path, host: str, port: int) -> Runtime:
    runtime = Runtime(host, port, secrets.token_urlsafe(24))
    path = data_dir / "runtime.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(runtime.__dict__, out)
    return runtime


def read_runtime(data_dir: pathlib.Path) -> Runtime:
    return Runtime(**json.loads((data_dir / "runtime.json").read_text()))


def secret_file(data_dir: pathlib.Path, name: str) -> bytes:
    """A random secret kept in the data directory (created on first use, mode 0600)."""
    path = data_dir / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()
