"""Hostile HTTP framing on ``POST /api/event`` of a real ``clickport dev`` (uvicorn), over raw
loopback sockets, where a client controls every byte: a declared length over the limit, a
chunked body with no length that grows past it, broken chunk framing, invalid UTF-8, and a
client that stops halfway through its body. Never a 5xx, the process stays healthy, and a
request the client did not finish is not stored (it got no answer, so a retry would count
it twice)."""

from __future__ import annotations

import pathlib
import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from .support import FIREFOX, SITE, DevProcess, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    root = pathlib.Path(tmp_path_factory.mktemp("http"))
    process = DevProcess(root / "data", root, CLICKPORT_RATE_LIMIT_PER_MINUTE="0",
                         CLICKPORT_BATCH_MAX_SECONDS="0.1").start()
    yield process
    process.stop()


def exchange(dev: DevProcess, head: bytes, body: bytes = b"", *, half_close: bool = False,
             pause: float = 0.0) -> bytes:
    """Send raw bytes; the server's whole answer ("" if it closed without one)."""
    with socket.create_connection(("127.0.0.1", dev.port), timeout=10) as s:
        s.sendall(head + b"\r\n\r\n")
        if pause:
            time.sleep(pause)
        if body:
            s.sendall(body)
        if half_close:
            time.sleep(0.2)
            s.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and answer.startswith(b"HTTP/1.1") and \
                        len(answer) >= answer_length(answer):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def answer_length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return 1 << 30


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def head(*lines: str) -> bytes:
    return "\r\n".join(["POST /api/event HTTP/1.1", "Host: ingest", f"User-Agent: {FIREFOX}",
                        *lines]).encode()


def click(domain: str) -> bytes:
    return orjson.dumps({"t": "c", "d": SITE, "u": "https://demo.localhost/",
                         "sid": "http" + "h" * 20, "cu": f"https://{domain}/x", "ct": "x",
                         "ck": "primary"})


def clicks_to(dev: DevProcess, domain: str) -> int:
    rows = httpx.get(dev.base + "/api/outbound-links", params={"period": "all"},
                     headers={"x-api-key": dev.key()}, timeout=10).json()["results"]
    return sum(row["clicks"] for row in rows if row["domain"] == domain)


def healthy(dev: DevProcess) -> None:
    assert dev.proc is not None and dev.proc.poll() is None
    assert httpx.get(dev.base + "/readyz", timeout=10).status_code == 200
    ok = httpx.post(dev.base + "/api/event", content=click("after.example"),
                    headers={"user-agent": FIREFOX}, timeout=10)
    assert ok.json() == {"ok": True}


def test_a_declared_length_over_the_limit_is_413_before_the_body(dev: DevProcess) -> None:
    answer = exchange(dev, head("Content-Length: 100000000"), b"{}")
    assert status_of(answer) == 413 and b'"limit_bytes":8192' in answer
    healthy(dev)


def test_a_chunked_body_growing_past_the_limit_is_413(dev: DevProcess) -> None:
    chunk = b"x" * 4000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    answer = exchange(dev, head("Transfer-Encoding: chunked"), body)
    assert status_of(answer) == 413
    healthy(dev)


@pytest.mark.parametrize("body", [b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nabc\r\n0\r\n\r\n",
                                  b"-1\r\nx\r\n0\r\n\r\n", b"ffffffffffffffffff\r\nx\r\n"],
                         ids=["bad-size", "short-chunk", "negative", "huge-size"])
def test_broken_chunk_framing_is_never_a_5xx(dev: DevProcess, body: bytes) -> None:
    answer = exchange(dev, head("Transfer-Encoding: chunked"), body, half_close=True)
    assert status_of(answer) in (0, 400, 413), answer[:200]
    healthy(dev)


def test_invalid_utf8_and_nul_bytes_over_a_real_socket_are_400(dev: DevProcess) -> None:
    for body in (click("utf8.example").replace(b"/x", b"/\xff\xfe"), b"\x00" * 100,
                 b'{"t":"p"' + b"\x00" + b"}"):
        answer = exchange(dev, head(f"Content-Length: {len(body)}"), body)
        assert status_of(answer) == 400, answer[:300]
        assert b'"field"' in answer and b"access-control-allow-origin: *" in answer.lower()
    healthy(dev)


def test_a_request_the_client_did_not_finish_is_not_stored(dev: DevProcess) -> None:
    body = click("unfinished.example")
    answer = exchange(dev, head(f"Content-Length: {len(body) + 40}"), body, half_close=True)
    assert status_of(answer) in (0, 400)
    healthy(dev)
    assert wait_for(lambda: clicks_to(dev, "after.example") > 0, 20)
    time.sleep(0.5)  # one more sessionizer batch
    assert clicks_to(dev, "unfinished.example") == 0
