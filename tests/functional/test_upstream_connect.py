"""Opening an upstream connection wakes no other thread: `authproxy serve` runs a loop that
resolves a numeric upstream address inline (authproxy/web/event_loop.py). llama-server closes
its connection after every stream, so each stream opens one before its first token; with
uvloop's own `sock_connect` that meant a round trip through libuv's resolver threads, which
waits for a free CPU on a busy machine (see README, "Overhead")."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
from fakes.engine import FakeEngine

from authproxy.web.event_loop import new_event_loop

from .helpers import CHAT, bearer, chat_body
from .serve_process import serve_process
from .wire import parse_sse


def _thread_names(pid: int) -> list[str]:
    return [(task / "comm").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir()]


async def test_upstream_connections_open_without_resolver_threads(
    tmp_path: Path, engine: FakeEngine
) -> None:
    async with serve_process(tmp_path, engine) as gw, aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(
                gw.base_url + CHAT,
                headers=bearer(gw.accounts.user_key),
                json=chat_body(stream=True),
            ) as r:
                assert r.status == 200
                assert parse_sse(await r.read())[-1].data == "[DONE]"
        names = _thread_names(gw.proc.pid)
    assert sum(1 for q in engine.requests if q.path == CHAT) == 2
    # uvloop starts its resolver threads (named libuv-worker) on first use, never before
    assert "libuv-worker" not in names, names


def test_names_and_typed_questions_resolve_as_before() -> None:
    loop = new_event_loop()
    try:
        numeric = loop.run_until_complete(loop.getaddrinfo("127.0.0.1", 8400))
        named = loop.run_until_complete(
            loop.getaddrinfo("localhost", 8400, family=socket.AF_INET, type=socket.SOCK_STREAM)
        )
        datagram = loop.run_until_complete(
            loop.getaddrinfo("127.0.0.1", 8400, type=socket.SOCK_DGRAM)
        )
    finally:
        loop.close()
    assert [a[4] for a in numeric] == [("127.0.0.1", 8400)]
    assert ("127.0.0.1", 8400) in [a[4] for a in named]
    assert [(a[1], a[4]) for a in datagram] == [(socket.SOCK_DGRAM, ("127.0.0.1", 8400))]
