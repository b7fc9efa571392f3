"""Reading a request body with the client held to a pace.

aiohttp's ``request.read()`` waits as long as the client likes, and one case never ends: a
chunked body whose framing breaks after the handler started (a bad chunk size) is refused by
aiohttp's HTTP parser, but the body being read is never told, so the read would wait until the
client gives up. Here every piece of the body must arrive within ``idle`` seconds of the one
before (``timeouts.client_body``); otherwise the request ends with a 408 in the OpenAI error
shape. The body is also held to ``limit`` bytes as it arrives.
"""

from __future__ import annotations

import asyncio

from aiohttp import StreamReader, web

from authproxy.errors import PayloadTooLarge, RequestTimeout

__all__ = ["next_piece", "read_body"]


async def next_piece(content: StreamReader, *, idle: float) -> bytes:
    """The next piece of a request body (``b""`` at its end); 408 if none comes within
    ``idle`` s. Every read of a client's body goes through here (whole bodies, uploads)."""
    try:
        async with asyncio.timeout(idle):
            return await content.readany()
    except TimeoutError:
        raise RequestTimeout(
            f"the request body stopped arriving (nothing for {idle:g}s)",
            code="request_body_timeout",
        ) from None


async def read_body(request: web.Request, *, limit: int, idle: float) -> bytes:
    """The whole body of ``request`` (at most ``limit`` bytes, no pause over ``idle`` s)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("the request body is larger than max_request_mb allows")
    content = request.content
    if content.is_eof():  # all of it came with the headers (most API calls): no wait, no timer
        body = content.read_nowait()
        if len(body) > limit:
            raise PayloadTooLarge("the request body is larger than max_request_mb allows")
        return body
    pieces: list[bytes] = []
    size = 0
    while piece := await next_piece(content, idle=idle):
        size += len(piece)
        if size > limit:
            raise PayloadTooLarge("the request body is larger than max_request_mb allows")
        pieces.append(piece)
    return b"".join(pieces)
