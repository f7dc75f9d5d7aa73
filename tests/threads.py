"""Running real servers and workers inside the test process: an ASGI app under uvicorn in a
thread, and a sessionizer on its own event loop in a thread that can be stopped gracefully
or killed dead (its loop stops at once: no flush, no commit, no leave-group, so the broker
sees exactly what it sees when a worker process is SIGKILLed)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from services.cli import UVICORN_OPTIONS
from services.sessionizer.worker import Sessionizer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any, timeout: float = 90.0, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` on ``port`` (default: a free loopback port); yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           **UVICORN_OPTIONS))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


# Killed workers' loops and coroutines are kept here, never collected: collecting a
# coroutine that was stopped mid-await only produces "coroutine ignored GeneratorExit" noise.
_KILLED: list[WorkerThread] = []


class WorkerThread:
    def __init__(self, worker: Sessionizer, name: str) -> None:
        self.worker = worker
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.killed = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        with contextlib.suppress(RuntimeError):  # "Event loop stopped before Future completed"
            self.loop.run_until_complete(self.worker.run())

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def assignment(self) -> frozenset[int]:
        consumer = self.worker._consumer
        return consumer.assignment() if consumer is not None and self.worker.running \
            else frozenset()

    def stop(self) -> None:
        """Graceful: flush, commit, leave the group."""
        if not self.killed and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.worker.stop)
            self.thread.join(60)

    def kill(self) -> None:
        """Dead stop: the loop halts where it is; nothing is flushed or committed."""
        self.killed = True
        _KILLED.append(self)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
