"""An engine whose HTTP/1.1 could be read two ways, through the real gateway.

The engine here is a raw socket server that writes exactly the bytes a test gives it (no
HTTP library would send them): conflicting lengths, a header with a bare LF, a coding other
than chunked, a second answer smuggled after the first. The client always gets the one
error shape or the engine's real answer — never a 500, never another request's answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from .helpers import CHAT, bearer, chat_body, running_gateway
from .wire import assert_error_shape

Answer = Callable[[int], bytes]  # the n-th chat request (from 0) -> the bytes written back


def completion(content: str) -> bytes:
    body = json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "tiny",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    ).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body


HEALTHY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@asynccontextmanager
async def raw_engine(answer: Answer) -> AsyncIterator[str]:
    """A keep-alive engine on 127.0.0.1: /health is healthy, chat requests get ``answer``."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if head.startswith(b"GET /health"):
                    writer.write(HEALTHY)
                else:
                    writer.write(answer(served))
                    served += 1
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
        b"HTTP/1.1 200 OK\r\nX-Engine: a\nSet-Cookie: b\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n",
    ],
    ids=["two-lengths", "bare-lf", "gzip-coding", "negative-length", "hex-prefix-chunk"],
)
async def test_an_engine_answer_that_could_mean_two_things_is_a_502_in_the_error_shape(
    tmp_path: Path, session: aiohttp.ClientSession, answer: bytes
) -> None:
    async with raw_engine(lambda _: answer) as url, running_gateway(tmp_path, url) as gw:
        async with session.post(
            gw.url(CHAT), headers=bearer(gw.accounts.user_key), json=chat_body()
        ) as r:
            assert r.status == 502
            err = assert_error_shape(await r.json(content_type=None))
        assert err["type"] == "upstream_error"
        (row,) = await gw.usage(1)  # nothing lost: the failed request has its row
        assert row.status == 502


async def test_a_smuggled_second_answer_never_reaches_the_next_client(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    def answer(n: int) -> bytes:
        if n == 0:  # the real answer, then one nobody asked for on the same connection
            return completion("first") + completion("smuggled")
        return completion(f"answer {n}")

    async with raw_engine(answer) as url, running_gateway(tmp_path, url) as gw:
        contents = []
        for _ in range(3):
            async with session.post(
                gw.url(CHAT), headers=bearer(gw.accounts.user_key), json=chat_body()
            ) as r:
                assert r.status == 200
                contents.append((await r.json())["choices"][0]["message"]["content"])
    assert contents == ["first", "answer 1", "answer 2"]
