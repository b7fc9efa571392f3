"""The gateway's listening sockets, bound before anything else starts.

Binding first means a taken port is one clear error before the store is opened or a health
check runs, so nothing has to be torn down and nothing else is printed.

With ``workers: N`` every worker binds the same port with ``SO_REUSEPORT`` and the kernel
spreads new connections over them (Linux); the supervisor checks first, without it, that no
other program holds the port.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys

__all__ = ["ListenError", "bind_sockets", "can_share_port"]


class ListenError(Exception):
    """The configured address can't be listened on; the message is the whole story."""


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: OSError) -> str:
    text = os.strerror(exc.errno) if exc.errno else str(exc.strerror or exc)
    return text[:1].lower() + text[1:]


def can_share_port() -> bool:
    """Whether several processes can listen on one port with the kernel balancing between
    them: ``SO_REUSEPORT`` on Linux (elsewhere it exists but does not balance)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_sockets(host: str, port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """One bound socket per address ``host`` resolves to (as asyncio's ``create_server``
    would bind them), or ``ListenError`` naming the address and why. ``reuse_port``: shared
    with the other workers of this gateway (``SO_REUSEPORT``)."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {_where(host, port)}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address[0], port, *address[2:]))
            port = sock.getsockname()[1]  # with port 0: the same free port on every address
    except OSError as exc:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        raise ListenError(f"cannot listen on {_where(host, port)}: {_reason(exc)}") from None
    return sockets
