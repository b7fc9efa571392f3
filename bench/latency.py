"""Added latency at concurrency 1: one lean keep-alive client, the same for both targets.

Requests to the targets (direct, the proxies) alternate, and which goes first rotates every
round, so drift on the machine (frequency scaling, a cron job) hits all of them alike and the
client's own cost cancels out in the differences.
"""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass

from bench.procs import HOST, BenchError


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    port: int
    key: str | None  # the bearer key, or None for the engine


@dataclass(frozen=True, slots=True)
class Summary:
    p50_ms: float
    p99_ms: float
    mean_ms: float
    n: int


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks; `sorted_values` must be sorted."""
    if not sorted_values:
        raise ValueError("no samples")
    pos = (len(sorted_values) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def summarize(samples_ms: list[float]) -> Summary:
    ordered = sorted(samples_ms)
    return Summary(
        p50_ms=percentile(ordered, 50),
        p99_ms=percentile(ordered, 99),
        mean_ms=sum(ordered) / len(ordered),
        n=len(ordered),
    )


class KeepAliveClient:
    """One persistent HTTP/1.1 connection; `post` returns (status, body, seconds)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._headers = {"Content-Type": "application/json"}
        if target.key is not None:
            self._headers["Authorization"] = f"Bearer {target.key}"
        self._conn = http.client.HTTPConnection(HOST, target.port, timeout=30)
        self._connect()

    def _connect(self) -> None:
        self._conn.close()
        self._conn.connect()
        sock = self._conn.sock
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self._conn.request("POST", path, body=body, headers=self._headers)
        resp = self._conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - started
        if resp.will_close:  # the server closed: reconnect outside the timed section
            self._connect()
        return resp.status, data, elapsed

    def close(self) -> None:
        self._conn.close()


def _check(target: Target, status: int, data: bytes, stream: bool) -> None:
    if status != 200:
        raise BenchError(f"{target.name}: HTTP {status}: {data[:300]!r}")
    if stream and b"[DONE]" not in data:
        raise BenchError(f"{target.name}: the stream did not end with [DONE]: {data[-300:]!r}")
    if not stream and b'"choices"' not in data:
        raise BenchError(f"{target.name}: not a chat completion: {data[:300]!r}")


def measure_latency(
    targets: list[Target],
    *,
    path: str,
    body: bytes,
    stream: bool,
    requests: int,
    warmup: int,
) -> list[Summary]:
    """`requests` sequential requests to each target, interleaved (the order rotates every
    round); latencies in ms, one Summary per target."""
    clients = [KeepAliveClient(t) for t in targets]
    samples: list[list[float]] = [[] for _ in targets]
    try:
        for i in range(warmup + requests):
            shift = i % len(clients)
            for side in [*range(shift, len(clients)), *range(shift)]:
                client = clients[side]
                status, data, elapsed = client.post(path, body)
                _check(client.target, status, data, stream)
                if i >= warmup:
                    samples[side].append(elapsed * 1000)
    finally:
        for client in clients:
            client.close()
    return [summarize(s) for s in samples]
