"""Real file-system faults for the reliability tests: a small tmpfs that fills up, and a
directory made read-only under a running process by a read-only bind mount (root ignores
permission bits, so ``chmod`` would not stop root's writes; a read-only mount stops
everyone's). Both need ``mount`` (root, as in CI); everything mounted is unmounted on exit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import subprocess
from collections.abc import Iterator

import pytest


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {done.stderr.strip()}")


def _unmount(path: pathlib.Path) -> None:
    try:
        _run("umount", str(path))
    except OSError:  # still busy (a file left open): detach it now, freed when closed
        _run("umount", "-l", str(path))


def _mounting(*argv: str) -> None:
    try:
        _run(*argv)
    except OSError as exc:
        pytest.fail(f"these faults need mount (root, as CI runs): {exc}")


@contextlib.contextmanager
def tmpfs(path: pathlib.Path, size: str) -> Iterator[pathlib.Path]:
    """A tmpfs of ``size`` (``mount -o size=``) at ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    _mounting("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        _unmount(path)


@contextlib.contextmanager
def bound(source: pathlib.Path, target: pathlib.Path) -> Iterator[pathlib.Path]:
    """``source`` also at ``target`` (a bind mount), e.g. to keep chDB off a small tmpfs."""
    source.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    _mounting("mount", "--bind", str(source), str(target))
    try:
        yield target
    finally:
        _unmount(target)


@contextlib.contextmanager
def read_only(path: pathlib.Path) -> Iterator[None]:
    """``path`` read-only for every process, root included, while open files stay open: a
    bind mount of it onto itself, remounted read-only; writable again on exit."""
    _mounting("mount", "--bind", str(path), str(path))
    try:
        _mounting("mount", "-o", "remount,ro,bind", str(path))
        yield
    finally:
        _unmount(path)


def fill(directory: pathlib.Path, name: str = "filler") -> pathlib.Path:
    """Write a file in ``directory`` until its file system has no space left."""
    filler = directory / name
    size = 1 << 20
    with open(filler, "wb", buffering=0) as out:
        while size >= 512:
            try:
                written = out.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2
                continue
            if not written or written < size:  # a short write: nearly full
                size //= 2
    with contextlib.suppress(OSError):
        os.sync()
    return filler
