"""uvicorn's httptools protocol with a header-read and a body-read timeout.

uvicorn (0.54) closes an idle keep-alive connection (``timeout_keep_alive``) and nothing
else: a client that sends its request headers a byte at a time, or starts a body and never
finishes it, holds a connection and a file descriptor for as long as it likes.
`ReadTimeoutProtocol` answers ``408`` and closes a connection whose request headers are not
complete ``header_timeout`` seconds after the connection opened (for the first request) or
after the request's first byte (for later ones; the idle time between requests is the
keep-alive timeout's), and one whose body is not complete ``body_timeout`` seconds after its
headers; the application then sees the client gone (``http.disconnect``). A connection that
sent nothing is closed without an answer.

The timers are armed lazily, after `data_received` has fed the parser: a request whose
headers and body arrive together (every beacon) arms none, so a request pays a few
attribute checks; only the wait for a connection's first request is armed in
`connection_made`. A body is timed as a whole, also while uvicorn pauses reading because the
application has not yet taken 64 KB of it: an application that reads a large body late can
see it time out (no route here takes more than a few KB).

It subclasses uvicorn's protocol and uses the per-request state it keeps (``cycle``), so
it is bound to the uvicorn version pinned in pyproject.toml;
tests/reliability/test_slow_clients.py checks it against a real server.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from services.core.settings import Settings

_TIMEOUT_BODY = b"request timeout\n"
_Base = HttpToolsProtocol  # called directly in the per-request overrides: cheaper than super()


class ReadTimeoutProtocol(HttpToolsProtocol):
    header_timeout: float = Settings.header_timeout_seconds
    body_timeout: float = Settings.body_timeout_seconds

    _read_timer: asyncio.TimerHandle | None = None
    _waiting: Literal["headers", "body"] | None = "headers"
    _begun = False  # a byte of a request has arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._read_timer = self.loop.call_later(self.header_timeout, self._read_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        _Base.data_received(self, data)
        if self._waiting is not None and self._read_timer is None \
                and not self.transport.is_closing():
            seconds = self.header_timeout if self._waiting == "headers" else self.body_timeout
            self._read_timer = self.loop.call_later(seconds, self._read_timed_out)

    def on_message_begin(self) -> None:
        _Base.on_message_begin(self)
        self._waiting, self._begun = "headers", True

    def on_headers_complete(self) -> None:
        self._cancel_read_timer()
        self._waiting = "body"
        _Base.on_headers_complete(self)

    def on_message_complete(self) -> None:
        _Base.on_message_complete(self)
        self._cancel_read_timer()
        self._waiting = None

    def handle_websocket_upgrade(self) -> None:
        self._cancel_read_timer()  # the connection now belongs to the WebSocket protocol
        self._waiting = None
        super().handle_websocket_upgrade()

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._waiting == "body" and cycle is not None:
            if cycle.response_started:  # answered without its whole body: only stop reading
                self.transport.close()
                return
            # What connection_lost would do, now: the application's receive() returns
            # http.disconnect, and whatever it sends after this is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        if self._begun:
            self.transport.write(self._timeout_answer())
        self.transport.close()

    def _timeout_answer(self) -> bytes:
        content = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"content-type: text/plain; charset=utf-8\r\n",
                        b"content-length: %d\r\n" % len(_TIMEOUT_BODY),
                        b"connection: close\r\n\r\n", _TIMEOUT_BODY])
        return b"".join(content)


def read_timeout_protocol(header_seconds: float, body_seconds: float
                          ) -> type[ReadTimeoutProtocol]:
    """The protocol class with these timeouts, for uvicorn's ``http=`` option."""

    class Configured(ReadTimeoutProtocol):
        header_timeout = header_seconds
        body_timeout = body_seconds

    return Configured
