"""A client that goes away closes the upstream request at once (the engine frees its slot),
and what was streamed until then is still charged."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import (
    CHAT,
    MESSAGES,
    Gateway,
    bearer,
    chat_body,
)

FREED_WITHIN = 1.0


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
async def test_client_disconnect_mid_stream_cancels_the_engine_stream(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession, path: str
) -> None:
    body = chat_body(stream=True, max_tokens=20, fake={"token_delay": 0.5})
    resp = await session.post(
        gateway.url(path), headers=bearer(gateway.accounts.user_key), json=body
    )
    try:
        assert resp.status == 200
        first = b""
        while b"tok0" not in first:  # Anthropic streams send two events before the first token
            first += await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5.0)
        assert engine.open_streams == 1
    finally:
        resp.close()
    loop = asyncio.get_running_loop()
    closed_at = loop.time()
    await engine.wait_until(lambda: engine.cancelled_streams == 1, within=FREED_WITHIN + 2.0)
    assert loop.time() - closed_at <= FREED_WITHIN
    await engine.wait_until(lambda: engine.open_streams == 0, within=1.0)

    row = (await gateway.usage(1))[0]
    assert row.endpoint == path
    assert row.stream is True
    assert row.usage_source == "estimated"
    assert 1 <= row.completion_tokens <= 2  # what was streamed (a second token at most, late)
    assert row.prompt_tokens > 0
    assert (row.user_id, row.key_id) == (gateway.accounts.user_id, gateway.accounts.user_key_id)


async def _give_up_before_headers(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession, stream: bool
) -> None:
    body = chat_body(stream=stream, fake={"fault": "stall_headers"})
    want = engine.cancelled_requests + 1
    request = asyncio.ensure_future(
        session.post(gateway.url(CHAT), headers=bearer(gateway.accounts.user_key), json=body)
    )
    await engine.wait_until(lambda: engine.open_requests == 1, within=5.0)
    request.cancel()  # the client gives up and closes its connection
    with pytest.raises(asyncio.CancelledError):
        await request
    loop = asyncio.get_running_loop()
    closed_at = loop.time()
    await engine.wait_until(lambda: engine.cancelled_requests == want, within=FREED_WITHIN + 2.0)
    assert loop.time() - closed_at <= FREED_WITHIN
    await engine.wait_until(lambda: engine.open_requests == 0, within=1.0)


async def test_client_disconnect_before_headers_cancels_the_engine_request(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    await _give_up_before_headers(gateway, engine, session, stream=False)
    await _give_up_before_headers(gateway, engine, session, stream=True)
    rows = await gateway.usage(2)
    assert len(rows) == 2
    assert all(r.completion_tokens == 0 and r.ttft_ms is None for r in rows)
