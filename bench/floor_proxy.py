"""The floor of our stack: a bare aiohttp + uvloop reverse proxy, no auth, policy or accounting.

    python -m bench.floor_proxy --upstream http://127.0.0.1:8081 --port 0

It forwards the method, path, query, body and end-to-end headers to one upstream over a
keep-alive pool and streams the answer back chunk by chunk as it arrives: what any aiohttp
gateway pays before it does anything of its own. It runs on the gateway's event loop
(authproxy/web/event_loop.py), or on uvloop's own with ``--stock-uvloop``, with the gateway's
collector settings (authproxy/web/heap.py), or Python's with ``--default-gc``. Prints
``floor proxy listening on URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

import aiohttp
import uvloop
from aiohttp import web

from authproxy.web.event_loop import new_event_loop
from authproxy.web.heap import settle_heap

__all__ = ["HOP_BY_HOP", "make_app"]

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    )
)  # fmt: skip
SESSION = web.AppKey("session", aiohttp.ClientSession)  # keep-alive pool
FRESH = web.AppKey("fresh", aiohttp.ClientSession)  # a new connection every time
# A pooled connection the upstream had closed (llama-server closes after every stream while
# announcing keep-alive): nothing was answered, so the request goes again on a new connection.
STALE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientConnectionResetError)


async def _forward(request: web.Request) -> web.StreamResponse:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    body = await request.read()
    for session in (request.app[SESSION], request.app[FRESH]):
        try:
            upstream = await session.request(
                request.method, request.rel_url, data=body, headers=headers,
                allow_redirects=False,
            )  # fmt: skip
            break
        except STALE as exc:
            if session is request.app[FRESH] or isinstance(exc, aiohttp.ClientConnectorError):
                raise
    async with upstream:
        out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for k, v in upstream.headers.items():
            if k.lower() not in HOP_BY_HOP:
                out.headers.add(k, v)
        if upstream.content_length is not None:
            out.content_length = upstream.content_length
        await out.prepare(request)
        async for chunk in upstream.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
        return out


async def _session_ctx(app: web.Application, upstream: str) -> None:
    for key, connector in (
        (SESSION, aiohttp.TCPConnector(limit=0, keepalive_timeout=4)),
        (FRESH, aiohttp.TCPConnector(limit=0, force_close=True)),
    ):
        app[key] = aiohttp.ClientSession(
            upstream, connector=connector, auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=None),
        )  # fmt: skip


def make_app(upstream: str) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(lambda a: _session_ctx(a, upstream))
    app.on_cleanup.append(lambda a: a[SESSION].close())
    app.on_cleanup.append(lambda a: a[FRESH].close())
    app.router.add_route("*", "/{tail:.*}", _forward)
    return app


async def _serve(upstream: str, port: int) -> None:
    runner = web.AppRunner(make_app(upstream), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print(f"floor proxy listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Bare aiohttp reverse proxy (the bench's floor).")
    p.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8081")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    p.add_argument("--stock-uvloop", action="store_true", help="uvloop's loop as it comes")
    p.add_argument("--default-gc", action="store_true", help="Python's collector settings")
    args = p.parse_args(argv)
    factory = uvloop.new_event_loop if args.stock_uvloop else new_event_loop
    if not args.default_gc:
        settle_heap()  # the gateway's collector settings: the ratios compare our own code
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_serve(args.upstream, args.port))


if __name__ == "__main__":
    main()
