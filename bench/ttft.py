"""Time to first token at concurrency 1: a raw-socket client that timestamps the first byte of
the first content event of a streamed chat completion.

Requests to the targets are interleaved (the order rotates every round), so drift on the
machine hits every target alike. The clock starts before the request is written, or before the
connect when the server closed the previous connection: llama-server closes after every stream
(while announcing keep-alive), so a client talking to it directly pays a connect per stream
as any real client does, and a proxy pays it on its upstream leg instead.
"""

from __future__ import annotations

import select
import socket
import time

from bench.latency import Summary, Target, summarize
from bench.procs import HOST, BenchError

__all__ = ["StreamClient", "measure_ttft"]

CONTENT = b'"content":"'
END = b"\r\n0\r\n\r\n"
MAX_EMPTY = 20  # per target and run


class StreamClient:
    """One HTTP/1.1 connection, reopened when the server closed it."""

    def __init__(self, target: Target, path: str, body: bytes) -> None:
        self.target = target
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{target.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        )
        if target.key is not None:
            head += f"Authorization: Bearer {target.key}\r\n"
        self._request = (head + "\r\n").encode() + body
        self._sock: socket.socket | None = None
        self.reconnects = 0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.target.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reconnects += 1
        return sock

    def _closed_by_peer(self, sock: socket.socket) -> bool:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)  # between responses, anything readable is the server's FIN

    def stream(self) -> tuple[float, float] | None:
        """One streamed request: (seconds to the first content byte, seconds to the end), or
        None for a 200 that carried no content (llama-server now and then ends a stream right
        after its headers, whichever path the request took)."""
        started = time.perf_counter()
        sock = self._sock
        if sock is None or self._closed_by_peer(sock):
            if sock is not None:
                sock.close()
            sock = self._sock = self._connect()
        sock.sendall(self._request)
        buf = b""
        first: float | None = None
        retried = False
        while not buf.endswith(END):
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data and not buf and not retried:  # closed just before we wrote
                retried = True
                sock.close()
                sock = self._sock = self._connect()
                sock.sendall(self._request)
                continue
            if not data:
                self.close()
                if buf.startswith(b"HTTP/1.1 200") and first is None:
                    return None
                raise BenchError(
                    f"{self.target.name}: connection closed mid-answer: {buf[-300:]!r}"
                )
            buf += data
            if first is None and CONTENT in buf:
                first = time.perf_counter()
        end = time.perf_counter()
        if not buf.startswith(b"HTTP/1.1 200"):
            raise BenchError(f"{self.target.name}: not a streamed completion: {buf[:300]!r}")
        if first is None:
            return None
        return first - started, end - started

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def measure_ttft(
    targets: list[Target], *, path: str, body: bytes, requests: int, warmup: int
) -> tuple[list[Summary], list[int]]:
    """`requests` streams to each target, interleaved: time to first token in ms, and per
    target the number of empty streams (retried, not timed)."""
    clients = [StreamClient(t, path, body) for t in targets]
    samples: list[list[float]] = [[] for _ in targets]
    empty = [0 for _ in targets]
    try:
        for i in range(warmup + requests):
            shift = i % len(clients)
            for side in [*range(shift, len(clients)), *range(shift)]:
                timed = clients[side].stream()
                while timed is None and empty[side] < MAX_EMPTY:
                    empty[side] += 1
                    timed = clients[side].stream()
                if timed is None:
                    raise BenchError(f"{targets[side].name}: {MAX_EMPTY} streams without content")
                if i >= warmup:
                    samples[side].append(timed[0] * 1000)
    finally:
        for client in clients:
            client.close()
    return [summarize(s) for s in samples], empty
