"""Streaming: chunk by chunk with no buffering; usage asked of the engine and stripped again
unless the client asked for it; the Anthropic stream relayed and accounted."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import (
    CHAT,
    COMPLETIONS,
    DEFAULT_COMPLETION,
    MESSAGES,
    PROMPT_WORDS,
    Gateway,
    bearer,
    chat_body,
)
from .wire import SseEvent, parse_sse


async def _events(
    session: aiohttp.ClientSession, gw: Gateway, path: str, body: dict[str, Any]
) -> list[SseEvent]:
    async with session.post(gw.url(path), headers=bearer(gw.accounts.user_key), json=body) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        return parse_sse(await r.read())


async def test_chunks_arrive_one_by_one(gateway: Gateway, session: aiohttp.ClientSession) -> None:
    body = chat_body(stream=True, fake={"token_delay": 0.2})  # 8 tokens, 1.4 s in all
    arrivals: list[tuple[float, bytes]] = []
    started = time.monotonic()
    async with session.post(
        gateway.url(CHAT), headers=bearer(gateway.accounts.user_key), json=body
    ) as r:
        assert r.status == 200
        assert r.headers.get("Content-Length") is None
        async for data in r.content.iter_any():
            arrivals.append((time.monotonic() - started, data))
    with_content = [t for t, data in arrivals if b'"content"' in data]
    assert with_content[0] < 0.6, arrivals  # the first token did not wait for the rest
    assert arrivals[-1][0] >= 1.2
    assert with_content[-1] - with_content[0] >= 1.0
    assert len(with_content) >= 6  # not coalesced into a few big writes
    raw = b"".join(data for _, data in arrivals)
    texts = [e.json()["choices"][0]["delta"].get("content") for e in parse_sse(raw)[:8]]
    assert texts == [f"tok{i} " for i in range(8)]


@pytest.mark.parametrize("options", [None, {}, {"include_usage": False}])
async def test_usage_chunk_stripped_when_not_asked_for_but_accounted(
    gateway: Gateway,
    engine: FakeEngine,
    session: aiohttp.ClientSession,
    options: dict[str, bool] | None,
) -> None:
    extra: dict[str, Any] = {} if options is None else {"stream_options": options}
    events = await _events(session, gateway, CHAT, chat_body(stream=True, **extra))
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert not any("usage" in c for c in chunks)
    assert all(c["choices"] for c in chunks)
    assert len(chunks) == DEFAULT_COMPLETION + 1  # the tokens and the finish chunk
    assert engine.requests[0].body["stream_options"]["include_usage"] is True
    rows = await gateway.usage(1)
    row = rows[0]
    assert (row.prompt_tokens, row.completion_tokens) == (PROMPT_WORDS, DEFAULT_COMPLETION)
    assert (row.usage_source, row.stream, row.status) == ("engine", True, 200)


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
async def test_usage_chunk_relayed_when_asked_for(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession, path: str
) -> None:
    body = chat_body(stream=True, max_tokens=3, stream_options={"include_usage": True})
    if path == COMPLETIONS:
        body = {"model": "tiny", "prompt": "one two three four five", **body}
        del body["messages"]
    events = await _events(session, gateway, path, body)
    assert events[-1].data == "[DONE]"
    usage = [e.json() for e in events[:-1] if "usage" in e.json()]
    assert len(usage) == 1
    assert usage[0]["choices"] == []
    assert usage[0]["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert engine.requests[0].body["stream_options"] == {"include_usage": True}
    row = (await gateway.usage(1))[0]
    assert (row.endpoint, row.prompt_tokens, row.completion_tokens) == (path, 5, 3)


async def test_completions_stream_usage_stripped(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = {"model": "tiny", "prompt": "one two", "stream": True, "max_tokens": 4}
    events = await _events(session, gateway, COMPLETIONS, body)
    assert not any("usage" in e.data for e in events)
    assert [e.json()["choices"][0]["text"] for e in events[:4]] == [f"tok{i} " for i in range(4)]
    assert engine.requests[0].body["stream_options"] == {"include_usage": True}
    row = (await gateway.usage(1))[0]
    assert (row.prompt_tokens, row.completion_tokens, row.usage_source) == (2, 4, "engine")


async def test_anthropic_messages_stream_is_relayed_and_accounted(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = {
        "model": "tiny",
        "max_tokens": 3,
        "stream": True,
        "system": "sys word",
        "messages": [{"role": "user", "content": "hello there world"}],
    }
    events = await _events(session, gateway, MESSAGES, body)
    assert [e.event for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [e.json()["type"] for e in events] == [e.event for e in events]
    assert events[-2].json()["usage"] == {"output_tokens": 3}
    assert "stream_options" not in engine.requests[0].body  # not an OpenAI stream
    row = (await gateway.usage(1))[0]
    assert (row.endpoint, row.prompt_tokens, row.completion_tokens) == (MESSAGES, 5, 3)
    assert (row.usage_source, row.stream) == ("engine", True)


async def test_streamed_response_carries_the_request_id(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with session.post(
        gateway.url(CHAT), headers=bearer(gateway.accounts.user_key), json=chat_body(stream=True)
    ) as r:
        await r.read()
        request_id = r.headers.get("X-Request-Id")
    row = (await gateway.usage(1))[0]
    assert request_id == row.request_id == engine.requests[0].header("x-request-id")
