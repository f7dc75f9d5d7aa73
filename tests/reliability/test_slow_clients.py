"""Slow clients against a real ``clickport dev`` (uvicorn as clickport runs it), over raw
loopback sockets (issue #9, item 8). Before, 1,500 clients sending their headers slowly held
1,500 connections for 45 s: uvicorn closes only idle keep-alive connections, so nothing but
the file-descriptor limit bounded them. Now a connection that has not sent complete request
headers within CLICKPORT_HEADER_TIMEOUT_SECONDS is answered 408 and closed, however steadily
it trickles bytes; a body not complete within CLICKPORT_BODY_TIMEOUT_SECONDS is 408 and is
not stored; an idle keep-alive connection is closed after CLICKPORT_KEEP_ALIVE_SECONDS; and
a normal client is served all the while. Only upper bounds on time are checked."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from .support import FIREFOX, SITE, DevProcess

pytestmark = pytest.mark.timeout(120)

HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE = 2.0, 1.0, 1
SLOW, SILENT = 200, 20
# Far longer than a client trickling a byte every 0.25 s sends before the deadline, so only
# the server's timeout can end these connections.
SLOW_HEAD = ("POST /api/event HTTP/1.1\r\nHost: ingest\r\nUser-Agent: " + FIREFOX
             + "\r\nX-Padding: " + "p" * 200 + "\r\n\r\n").encode()
SLACK = 6.0  # seconds past a timeout within which the server must have closed


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    root = pathlib.Path(tmp_path_factory.mktemp("slow"))
    process = DevProcess(root / "data", root, CLICKPORT_RATE_LIMIT_PER_MINUTE="0",
                         CLICKPORT_BATCH_MAX_SECONDS="0.1",
                         CLICKPORT_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
                         CLICKPORT_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
                         CLICKPORT_KEEP_ALIVE_SECONDS=str(KEEP_ALIVE)).start()
    yield process
    process.stop()


def beacon(name: str) -> bytes:
    return orjson.dumps({"t": "c", "d": SITE, "u": f"https://{SITE}/", "sid": name.ljust(22, "s"),
                         "cu": f"https://{name}.example/x", "ct": "x", "ck": "primary"})


class Connection:
    """One raw connection that sends ``data`` a byte every ``pause`` seconds (after
    ``at_once`` bytes sent in one go) and keeps what the server answers until it closes."""

    def __init__(self, port: int, data: bytes, pause: float, at_once: int = 0) -> None:
        self.port, self.data, self.pause, self.at_once = port, data, pause, at_once
        self.answer = b""

    async def run(self) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        sender = asyncio.create_task(self._send(writer))
        try:
            while chunk := await reader.read(65536):
                self.answer += chunk
        except ConnectionResetError:
            pass
        finally:
            sender.cancel()
            writer.close()
        return self.answer

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        try:
            if self.at_once:
                writer.write(self.data[:self.at_once])
            for i in range(self.at_once, len(self.data)):
                await asyncio.sleep(self.pause)
                writer.write(self.data[i:i + 1])
                await writer.drain()
        except (ConnectionError, RuntimeError):  # the server closed first
            pass


async def served(dev: DevProcess, name: str) -> tuple[int, int]:
    async with httpx.AsyncClient(base_url=dev.base, timeout=10) as client:
        posted = await client.post("/api/event", content=beacon(name),
                                   headers={"user-agent": FIREFOX})
        ready = await client.get("/readyz")
    return posted.status_code, ready.status_code


def accepted(dev: DevProcess) -> int:
    return int(dev.readyz()["ingest"]["accepted"])


def test_slow_and_silent_header_senders_are_closed_while_a_client_is_served(
        dev: DevProcess) -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], tuple[int, int], float]:
        slow = [Connection(dev.port, SLOW_HEAD, 0.25, at_once=1) for _ in range(SLOW)]
        silent = [Connection(dev.port, b"", 0.0) for _ in range(SILENT)]
        started = time.monotonic()
        runs = asyncio.gather(*(c.run() for c in [*slow, *silent]))
        await asyncio.sleep(0.5)  # all of them connected and trickling
        normal = await served(dev, "during-slow-headers")
        answers = await asyncio.wait_for(runs, HEADER_TIMEOUT + SLACK)
        return answers[:SLOW], answers[SLOW:], normal, time.monotonic() - started

    slow_answers, silent_answers, normal, took = asyncio.run(scenario())
    assert normal == (202, 200)
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in slow_answers), set(slow_answers)
    assert silent_answers == [b""] * SILENT  # nothing was asked, so nothing is answered
    assert took < HEADER_TIMEOUT + SLACK
    assert asyncio.run(served(dev, "after-slow-headers")) == (202, 200)


def test_a_body_that_does_not_arrive_in_time_is_408_and_not_stored(dev: DevProcess) -> None:
    body = beacon("slow-body")
    head = (f"POST /api/event HTTP/1.1\r\nHost: ingest\r\nUser-Agent: {FIREFOX}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    before = accepted(dev)

    async def scenario() -> tuple[list[bytes], tuple[int, int]]:
        slow = [Connection(dev.port, head + body, 0.2, at_once=len(head) + 5) for _ in range(20)]
        runs = asyncio.gather(*(c.run() for c in slow))
        await asyncio.sleep(0.3)
        normal = await served(dev, "during-slow-body")
        return await asyncio.wait_for(runs, BODY_TIMEOUT + SLACK), normal

    answers, normal = asyncio.run(scenario())
    assert normal == (202, 200)
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), set(answers)
    assert b"connection: close" in answers[0].lower()
    assert accepted(dev) == before + 1  # only the normal client's beacon


def test_a_slow_body_to_the_query_api_is_408_and_no_error(dev: DevProcess) -> None:
    body = b'{"name": "slow goal", "type": "click", "conditions": []}'
    head = (f"POST /api/goals HTTP/1.1\r\nHost: api\r\nx-api-key: {dev.key()}\r\n"
            f"content-type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()

    async def scenario() -> bytes:
        connection = Connection(dev.port, head + body, 0.3, at_once=len(head) + 3)
        return await asyncio.wait_for(connection.run(), BODY_TIMEOUT + SLACK)

    assert asyncio.run(scenario()).startswith(b"HTTP/1.1 408 ")
    goals = httpx.get(dev.base + "/api/goals", headers={"x-api-key": dev.key()}, timeout=10)
    assert "slow goal" not in goals.text
    assert "ERROR" not in dev.logs() and "Traceback" not in dev.logs()


def test_an_idle_keep_alive_connection_is_closed(dev: DevProcess) -> None:
    body = beacon("keep-alive")
    request = (f"POST /api/event HTTP/1.1\r\nHost: ingest\r\nUser-Agent: {FIREFOX}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def scenario() -> bytes:
        connection = Connection(dev.port, request, 0.0, at_once=len(request))
        return await asyncio.wait_for(connection.run(), KEEP_ALIVE + 3.5)

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 202 ") and answer.endswith(b'{"ok":true}')


def test_a_second_request_whose_headers_trickle_is_408_too(dev: DevProcess) -> None:
    """The header timer starts again at a later request's first byte: a client cannot keep
    a connection by answering the keep-alive timer with one byte at a time."""
    body = beacon("then-slow")
    first = (f"POST /api/event HTTP/1.1\r\nHost: ingest\r\nUser-Agent: {FIREFOX}\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def scenario() -> bytes:
        connection = Connection(dev.port, first + SLOW_HEAD, 0.25, at_once=len(first) + 1)
        return await asyncio.wait_for(connection.run(), HEADER_TIMEOUT + SLACK)

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 202 ") and b'{"ok":true}HTTP/1.1 408 ' in answer
