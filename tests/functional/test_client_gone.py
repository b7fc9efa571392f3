"""A client whose connection drops just as the engine's answer arrives is a 499, not an
unhandled error: the gateway can find the client's transport closing before aiohttp has
cancelled its handler, and must not write the headers there and log a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from aiohttp import web
from fakes.engine import FakeEngine

from .helpers import CHAT, bearer, chat_body, wait_usage
from .serve_process import serve_process


async def test_a_client_gone_as_the_engine_answers_is_a_499(tmp_path: Path) -> None:
    clients: list[asyncio.StreamWriter] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)  # the headers are on their way to the gateway ...
        clients[-1].transport.abort()  # ... and the client resets its connection
        await asyncio.sleep(0.3)
        with contextlib.suppress(ConnectionResetError):  # the gateway closed its request
            await resp.write(b"data: [DONE]\n\n")
        return resp

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post(CHAT, answer)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        # serve_process reads only the engine's base_url
        upstream = SimpleNamespace(base_url=f"http://127.0.0.1:{runner.addresses[0][1]}")
        async with serve_process(tmp_path, cast(FakeEngine, upstream)) as gw:
            for _ in range(5):
                _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
                clients.append(writer)
                body = json.dumps(chat_body(stream=True)).encode()
                head = [
                    f"POST {CHAT} HTTP/1.1",
                    f"Host: 127.0.0.1:{gw.port}",
                    "Content-Type: application/json",
                    f"Content-Length: {len(body)}",
                    *(f"{k}: {v}" for k, v in bearer(gw.accounts.user_key).items()),
                ]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                await asyncio.sleep(0.5)
            rows = await wait_usage(gw.config.db_path, 5)
            log = "".join(gw.log)
    finally:
        await runner.cleanup()
    assert "unhandled error" not in log, log
    access = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert [(a["status"], a["error"]) for a in access] == [(499, "client_disconnected")] * 5
    assert len(rows) == 5  # each charged (its prompt), whichever way the race went
