"""A small aiohttp load generator, used by bench/overhead.py when wrk is not installed.

    BENCH_BODY='{...}' BENCH_AUTH=sk-... python -m bench.loadgen --port P --path /v1/... \
        --connections 64 --seconds 10

N workers, each on its own keep-alive connection, POST the body in a loop for the given time
and read every answer to the end. Prints one line: ``BENCH_RESULT {json}``. It is Python, so
on a small machine it may saturate a core itself; wrk is the better instrument.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence

import aiohttp

from bench.latency import percentile


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    stop_at: float,
    latencies: list[float],
    counts: list[int],
) -> None:
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                ok = resp.status == 200
        except aiohttp.ClientError:
            ok = False
        latencies.append((time.perf_counter() - started) * 1000)
        counts[0] += 1
        counts[1] += 0 if ok else 1


async def run(port: int, path: str, connections: int, seconds: float) -> dict[str, object]:
    body = os.environ.get("BENCH_BODY", "{}").encode()
    headers = {"Content-Type": "application/json"}
    key = os.environ.get("BENCH_AUTH")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    url = f"http://127.0.0.1:{port}{path}"
    latencies: list[float] = []
    counts = [0, 0]  # requests, errors
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(
            *(
                _worker(session, url, body, headers, stop_at, latencies, counts)
                for _ in range(connections)
            )
        )
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": counts[0],
        "errors": counts[1],
        "seconds": elapsed,
        "p50_ms": percentile(latencies, 50) if latencies else None,
        "p99_ms": percentile(latencies, 99) if latencies else None,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="aiohttp POST load generator (127.0.0.1).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(run(args.port, args.path, args.connections, args.seconds))
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
