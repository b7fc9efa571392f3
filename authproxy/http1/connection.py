"""One connection to an engine: writes a request, decodes the answer's framing as bytes
arrive, and hands the body to its ``Response``.

A connection carries one exchange at a time. When the answer's last byte is in and the
engine allows it, the connection goes back to its pool at once (``on_free``); the body bytes
already handed over live in the ``Response``. Anything odd (bytes after the end, an upload
still being sent, a framing error, a reader that left early) closes it instead.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterable, Callable
from typing import cast

from authproxy.http1.chunked import BadChunk, ChunkedDecoder
from authproxy.http1.errors import BadAnswer, CutOff, Disconnected, HttpError
from authproxy.http1.head import MAX_HEAD, Framing, parse_head
from authproxy.http1.response import Response

__all__ = ["Connection"]

_IDLE, _HEAD, _LENGTH, _CLOSE, _CHUNKED = range(5)


class Connection(asyncio.Protocol):
    """Made by ``loop.create_connection``; used by ``Pool`` only."""

    def __init__(
        self,
        *,
        on_free: Callable[[Connection], None],
        on_dropped: Callable[[Connection], None] | None = None,
    ) -> None:
        self._on_free = on_free
        self._on_dropped = on_dropped  # the engine closed it while it was idle
        self._abandoned = False
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_until = 0.0  # set by the pool while it holds the connection
        self.answers = 0  # exchanges completed on it
        self._state = _IDLE
        self._buf = bytearray()
        self._remaining = 0
        self._method = "GET"
        self._keep_alive = False
        self._head: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._decoder: ChunkedDecoder | None = None
        self._got_bytes = False
        self._upload: asyncio.Task[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        state = self._state
        if state == _IDLE and not self._abandoned and self._on_dropped is not None:
            self._on_dropped(self)
        if state == _HEAD:
            error: HttpError = (
                BadAnswer("the engine closed the connection in the middle of the answer's head")
                if self._got_bytes
                else Disconnected("the engine closed the connection without answering")
            )
            head = self._head
            if head is not None and not head.done():
                head.set_exception(error)
        elif state == _CLOSE:
            self._complete()
        elif state != _IDLE and self._response is not None:
            self._response._fail(CutOff("the engine closed the connection mid-answer"))
        self._state = _IDLE
        self._response = None
        # An upload still being sent stops here (its only reader is that task: cancelled, not
        # failed, so no exception is left unretrieved).
        drain = self._drain
        if drain is not None and not drain.done():
            drain.cancel()
        if self._upload is not None:
            self._upload.cancel()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == _LENGTH:  # the common case first: a body of known length, piece by piece
            self._length_body(data)
        elif state == _HEAD:
            self._head_bytes(data)
        elif state == _CLOSE:
            assert self._response is not None
            self._response._feed(data)
        elif state == _IDLE:  # nothing was asked: an engine that talks out of turn
            self.abandon()
        else:
            self._chunked(data)

    # -- the exchange ---------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        """Connected, and not closing (a close seen but not yet reported counts as closed)."""
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def send(
        self, method: str, head: bytes, body: bytes | AsyncIterable[bytes] | None, chunked: bool
    ) -> asyncio.Future[Response]:
        """Write the request; the future gets the answer's head."""
        assert self.transport is not None
        if not self.open:  # the engine's close is on its way
            raise Disconnected("the engine closed the connection before the request")
        self._method = method
        self._state = _HEAD
        self._got_bytes = False
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._head = waiter
        if body is None or isinstance(body, bytes):
            self.transport.write(head + body if body else head)
        else:
            self.transport.write(head)
            self._upload = asyncio.get_running_loop().create_task(self._send_upload(body, chunked))
        return waiter

    async def _send_upload(self, body: AsyncIterable[bytes], chunked: bool) -> None:
        transport = self.transport
        assert transport is not None
        try:
            async for piece in body:
                if not piece:
                    continue
                transport.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
                if self._write_paused:
                    self._drain = asyncio.get_running_loop().create_future()
                    await self._drain
                    self._drain = None
            if chunked:
                transport.write(b"0\r\n\r\n")
        except Exception:
            # The client's upload failed (it stopped, or broke the form): the engine must
            # not take a part of it for the whole. The forwarder reports the upload's error.
            self.abandon()
        finally:
            self._upload = None

    def abandon(self) -> None:
        """Close now: the exchange is not to be finished (or the connection is not sound)."""
        self._keep_alive = False
        self._abandoned = True
        if self.transport is not None:
            self.transport.close()

    def pause(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _head_bytes(self, data: bytes) -> None:
        self._got_bytes = True
        buf = self._buf
        start = max(len(buf) - 3, 0)
        buf += data
        end = buf.find(b"\r\n\r\n", start)
        if end < 0 and len(buf) <= MAX_HEAD:
            return  # more to come
        if end < 0 or end > MAX_HEAD:
            self._bad_head(BadAnswer("the engine's answer head is too large"))
            return
        raw, rest = bytes(buf[:end]), bytes(buf[end + 4 :])
        buf.clear()
        try:
            head = parse_head(raw, method=self._method)
        except BadAnswer as exc:
            self._bad_head(exc)
            return
        if head.status < 200:  # 100 Continue, 103 Early Hints: the answer is still to come
            if head.status == 101:
                self._bad_head(BadAnswer("the engine switched protocols"))
            elif rest:
                self._head_bytes(rest)
            return
        waiter = self._head
        self._head = None
        self._keep_alive = head.keep_alive
        if waiter is None or waiter.done():  # the wait ended (timed out, cancelled)
            self.abandon()
            return
        framing = head.framing
        if framing == Framing.NONE:
            waiter.set_result(Response(head=head, conn=None))
            if rest:
                self._keep_alive = False
            self._complete()
            return
        response = self._response = Response(head=head, conn=self)
        waiter.set_result(response)
        if framing == Framing.LENGTH:
            self._state = _LENGTH
            self._remaining = head.length
            if rest:
                self._length_body(rest)
        elif framing == Framing.CHUNKED:
            self._state = _CHUNKED
            self._decoder = ChunkedDecoder()
            if rest:
                self._chunked(rest)
        else:
            self._state = _CLOSE
            if rest:
                response._feed(rest)

    def _bad_head(self, error: BadAnswer) -> None:
        waiter, self._head = self._head, None
        self._state = _IDLE
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.abandon()

    def _length_body(self, data: bytes) -> None:
        response = self._response
        assert response is not None
        remaining = self._remaining
        size = len(data)
        if size < remaining:
            self._remaining = remaining - size
            response._feed(data)
            return
        if size > remaining:  # bytes past the end: nothing else may be read from this one
            self._keep_alive = False
            data = data[:remaining]
        if data:
            response._feed(data)
        self._complete()

    def _chunked(self, data: bytes) -> None:
        """A read of a chunked body: its payload handed over in one piece."""
        response = self._response
        assert response is not None and self._decoder is not None
        out: list[bytes] = []
        try:
            after: int | None = self._decoder.feed(data, out)
        except BadChunk:
            after = None
        if out:  # what was decoded, up to a break in the framing too
            response._feed(out[0] if len(out) == 1 else b"".join(out))
        if after is None:
            return self._cut("the engine's chunk framing is malformed")
        if after >= 0:  # the end: bytes after it mean nothing more is read from this one
            if after:
                self._keep_alive = False
            self._complete()
        return None

    def _cut(self, message: str) -> None:
        response, self._response = self._response, None
        self._state = _IDLE
        if response is not None:
            response._fail(CutOff(message))
        self.abandon()

    def _complete(self) -> None:
        """The answer is all in: hand the connection back, or close it."""
        response, self._response = self._response, None
        self._state = _IDLE
        self._decoder = None
        self.answers += 1
        if response is not None:
            response._finish()
        if self._keep_alive and self._upload is None and not self.closed:
            self._on_free(self)
        elif not self.closed:
            self.abandon()
