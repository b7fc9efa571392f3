"""A gateway's /metrics with busy fair queues, for the dashboard's snapshot: the text is what
the gateway's own metrics code renders for real queues (two slots held by alice, ten of her
requests and one of bob's waiting, one of hers refused as the queue was full), served on a
loopback port by a plain HTTP thread, so the snapshot does not depend on timing."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from authproxy.metrics.registry import GatewayMetrics
from authproxy.queue.fair_queue import FairQueue
from authproxy.queue.refusals import QueueFull

__all__ = ["busy_metrics_text", "serving_metrics"]


@dataclass
class _Upstream:
    name: str
    routable: bool
    outstanding: int
    queue: FairQueue | None


async def busy_metrics_text() -> str:
    queue = FairQueue(capacity=2, timeout=600, max_per_user=10)
    held = [await queue.acquire(user="alice") for _ in range(2)]
    waiters = [asyncio.create_task(queue.acquire(user="alice")) for _ in range(10)]
    waiters.append(asyncio.create_task(queue.acquire(user="bob")))
    for _ in range(3):
        await asyncio.sleep(0)
    with contextlib.suppress(QueueFull):
        await queue.acquire(user="alice")
    metrics = GatewayMetrics()
    metrics.watch_upstreams(lambda: [_Upstream("local", True, 2, queue)])
    body, _ = metrics.render()
    for w in waiters:
        w.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    for ticket in held:
        ticket.release()
    return body.decode()


@contextlib.contextmanager
def serving_metrics(text: str) -> Iterator[int]:
    """Serve ``text`` at ``GET /metrics`` on 127.0.0.1; yields the port."""
    payload = text.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
