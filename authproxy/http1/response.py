"""An engine's answer as the relay reads it: the head at once, the body as it arrives.

Body bytes are handed over by the connection (``_feed``) as soon as they are decoded; the
reader takes whatever has come (``async for``), a bounded part (``read_up_to``), or all of it
(``read``). While nobody reads, at most ``HIGH_WATER`` bytes wait here before the connection
stops reading from the engine (TCP then holds the engine back), so a slow client slows the
engine instead of filling the gateway's memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from multidict import CIMultiDictProxy

from authproxy.http1.errors import HttpError
from authproxy.http1.head import Head

__all__ = ["HIGH_WATER", "Reading", "Response"]

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class Reading(Protocol):
    """What the answer needs of its connection."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def abandon(self) -> None: ...


class Response:
    """``status``, ``reason``, ``headers``, ``content_type``; the body by the methods below.
    ``close()`` before the end closes the connection (the engine sees its client leave)."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_done",
        "_error",
        "_paused",
        "_size",
        "_waiter",
        "_whole",
        "content_type",
        "headers",
        "reason",
        "status",
    )

    def __init__(self, *, head: Head, conn: Reading | None) -> None:
        self.status = head.status
        self.reason = head.reason
        self.headers: CIMultiDictProxy[str] = head.headers
        kind = head.headers.get("Content-Type")
        self.content_type = (
            kind.partition(";")[0].strip().lower() if kind else "application/octet-stream"
        )
        self._conn = conn
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._done = conn is None
        self._error: HttpError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._whole = False  # read() wants it all: never pause for it

    # -- the connection's side --------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER and not self._paused and not self._whole:
            self._paused = True
            if self._conn is not None:
                self._conn.pause()
        self._wake()

    def _finish(self) -> None:
        self._done = True
        self._conn = None
        self._wake()

    def _fail(self, error: HttpError) -> None:
        self._error = error
        self._conn = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the reader's side ------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        """Body bytes received and not read yet."""
        return self._size

    @property
    def complete(self) -> bool:
        """The whole body is here (a read would not wait)."""
        return self._done

    def body_now(self) -> bytes:
        """The whole body, when it is ``complete`` already (no wait, no coroutine)."""
        if not self._done:
            raise RuntimeError("the body is not all here yet: await read()")
        return self._take() if self._chunks else b""

    async def _wait(self) -> None:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        self._resume()
        return data

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            if self._conn is not None:
                self._conn.resume()

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        """Whatever has arrived since the last read (waits for something); raises the
        connection's error once what came before it is read."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                raise StopAsyncIteration
            await self._wait()
        return self._take()

    async def read(self) -> bytes:
        """The whole body."""
        self._whole = True
        self._resume()
        while not self._done:
            if self._error is not None:
                raise self._error
            await self._wait()
        return self._take() if self._chunks else b""

    async def read_up_to(self, limit: int) -> bytes:
        """At most ``limit`` bytes: the start of the body when it is longer."""
        while self._size < limit and not self._done:
            if self._error is not None:
                raise self._error
            await self._wait()
        data = self._take() if self._chunks else b""
        return data[:limit]

    def close(self) -> None:
        """Done with it: a body not yet at its end closes the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._done = True
            conn.abandon()
