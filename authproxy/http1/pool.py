"""Connections to the engines, kept alive between requests, and the one way to send.

``Pool.request`` writes the request on an idle connection to the origin (or a new one, or
always a new one with ``fresh``) and returns the ``Response`` once its head is in. The wait
for the head is one timer on the head's future (``head_timeout``), not a cancel scope. A
caller that goes away while waiting closes the connection, so the engine sees it leave.

Idle connections are dropped after ``keepalive`` seconds, shorter than the engines' own
idle timeouts, so a pooled connection is closed by us before the engine closes it under us.

An engine that closes the connection right after each answer (llama-server does, after every
stream, while announcing keep-alive) would make every request wait for a new connection
before the engine sees it. When the engine closes an idle connection within ``WARM_WITHIN``
seconds of its answer, one new connection is opened in the background for the next request:
the connect leaves the first token's path. A connection we close ourselves is not replaced.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import AsyncIterable, Mapping

from authproxy.http1.connection import Connection
from authproxy.http1.errors import ConnectFailed
from authproxy.http1.origin import Origin
from authproxy.http1.response import Response

__all__ = ["Pool"]

USER_AGENT = "authproxy"
WARM_WITHIN = 1.0  # seconds after its answer: a close this soon is the engine's habit


class Pool:
    def __init__(self, *, connect_timeout: float, keepalive: float = 4.0) -> None:
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._idle: dict[Origin, list[Connection]] = {}
        # Every open connection, to close at shutdown; a closed one drops out by itself.
        self._all: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._tls: ssl.SSLContext | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self._warming: dict[Origin, asyncio.Task[None]] = {}

    async def request(
        self,
        origin: Origin,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | AsyncIterable[bytes] | None,
        *,
        length: int | None = None,
        fresh: bool = False,
        head_timeout: float | None = None,
    ) -> Response:
        """``target``: the path and query after the origin's prefix, already checked.
        ``body``: bytes, or an upload sent as it is read (``length`` bytes, or chunked)."""
        loop = asyncio.get_running_loop()
        deadline = None if head_timeout is None else loop.time() + head_timeout
        head, chunked = _request_head(origin, method, target, headers, body, length)
        conn = None if fresh else self._take(origin, loop.time())
        if conn is None:
            conn = await self._connect(origin, fresh=fresh)
        waiter = conn.send(method, head, body, chunked)
        timer = None if deadline is None else loop.call_at(deadline, _expire, waiter)
        try:
            return await waiter
        except BaseException:
            conn.abandon()
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _take(self, origin: Origin, now: float) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if _usable(conn, now):
                return conn
            conn.abandon()
        return None

    async def _connect(self, origin: Origin, *, fresh: bool) -> Connection:
        loop = asyncio.get_running_loop()
        free = _never_again if fresh else lambda conn: self._release(origin, conn)
        dropped = None if fresh else lambda conn: self._dropped(origin, conn)
        tls = None
        if origin.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(on_free=free, on_dropped=dropped),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError:
            raise ConnectFailed(f"no connection within {self._connect_timeout:g}s") from None
        except OSError as exc:  # refused, unreachable, unresolvable, a TLS failure
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        self._all.add(conn)
        return conn

    def _release(self, origin: Origin, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        conn.idle_until = loop.time() + self._keepalive
        self._idle.setdefault(origin, []).append(conn)
        if self._sweep is None:
            self._sweep = loop.call_later(self._keepalive, self._drop_expired)

    def _dropped(self, origin: Origin, conn: Connection) -> None:
        """The engine closed an idle connection: if right after its answer, warm a new one."""
        loop = asyncio.get_running_loop()
        answered = conn.idle_until - self._keepalive
        # Only after an answer: a warmed connection the engine closes unused is not replaced
        # (an engine that closes idle connections at once would have us connect in a loop).
        if not conn.answers or loop.time() - answered > WARM_WITHIN or origin in self._warming:
            return
        if any(not c.closed for c in self._idle.get(origin, ())):
            return
        self._warming[origin] = loop.create_task(self._warm(origin))

    async def _warm(self, origin: Origin) -> None:
        try:
            conn = await self._connect(origin, fresh=False)
        except ConnectFailed:
            return  # the next request finds out, and says so
        finally:
            self._warming.pop(origin, None)
        self._release(origin, conn)

    def _drop_expired(self) -> None:
        self._sweep = None
        now = asyncio.get_running_loop().time()
        left = False
        for idle in self._idle.values():
            keep = []
            for conn in idle:
                if _usable(conn, now):
                    keep.append(conn)
                else:
                    conn.abandon()
            idle[:] = keep
            left = left or bool(keep)
        if left:
            self._sweep = asyncio.get_running_loop().call_later(self._keepalive, self._drop_expired)

    def close(self) -> None:
        """Close every connection (at shutdown)."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for task in self._warming.values():
            task.cancel()
        self._warming.clear()
        for conn in list(self._all):
            conn.abandon()
        self._all.clear()
        self._idle.clear()


def _usable(conn: Connection, now: float) -> bool:
    """An idle connection still open, and not past its keep-alive."""
    return conn.idle_until > now and conn.open


def _never_again(conn: Connection) -> None:
    conn.abandon()


def _expire(waiter: asyncio.Future[Response]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _request_head(
    origin: Origin,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | AsyncIterable[bytes] | None,
    length: int | None,
) -> tuple[bytes, bool]:
    lines = [f"{method} {origin.prefix}{target} HTTP/1.1\r\n", f"Host: {origin.host_header}\r\n"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}\r\n")
    if origin.authorization is not None and "Authorization" not in headers:
        lines.append(f"Authorization: {origin.authorization}\r\n")
    chunked = False
    if isinstance(body, bytes):
        lines.append(f"Content-Length: {len(body)}\r\n")
    elif body is not None:
        if length is None:
            chunked = True
            lines.append("Transfer-Encoding: chunked\r\n")
        else:
            lines.append(f"Content-Length: {length}\r\n")
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0\r\n")
    lines.append(f"User-Agent: {USER_AGENT}\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    # Every line break is one the gateway wrote: a target, name or value carrying its own
    # would split the request in two for the engine.
    breaks = len(lines)
    if text.count("\n") != breaks or text.count("\r") != breaks or " " in target:
        raise ValueError("a request line or header holds a line break or the target a space")
    return text.encode("utf-8", "surrogateescape"), chunked
