"""The event loop the gateway runs on: uvloop, without a thread hop on every upstream connect.

aiohttp opens an upstream connection with ``loop.sock_connect(sock, (ip, port))``, and uvloop's
``sock_connect`` resolves that address again with ``getaddrinfo(ip, port, family=...)`` and no
socket type. With no type, uvloop's inline answer for numeric addresses does not apply, so the
call goes to libuv's resolver threads: a worker is woken, and it wakes the loop when done. That
is two thread wake-ups per connection, each of which waits for a free CPU on a busy machine.
llama-server closes its connection after every stream, so every stream paid them before its
first token. Here a numeric host asked about with no type is asked about as TCP, which uvloop
answers inline; names and typed questions go on as before.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

__all__ = ["new_event_loop"]

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
    uvloop = None  # type: ignore[assignment]


def _numeric(host: bytes | str | None) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


if uvloop is not None:

    class _GatewayLoop(uvloop.Loop):
        async def getaddrinfo(
            self,
            host: bytes | str | None,
            port: bytes | str | int | None,
            *,
            family: int = 0,
            type: int = 0,  # the name asyncio gives it
            proto: int = 0,
            flags: int = 0,
        ) -> list[tuple[Any, ...]]:
            if type == 0 and _numeric(host):
                type = socket.SOCK_STREAM
            answer: list[tuple[Any, ...]] = await super().getaddrinfo(
                host, port, family=family, type=type, proto=proto, flags=flags
            )
            return answer


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop (as above), or asyncio's where uvloop is not installed."""
    if uvloop is None:  # pragma: no cover
        return asyncio.new_event_loop()
    return _GatewayLoop()
