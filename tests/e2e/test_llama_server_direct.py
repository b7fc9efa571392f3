"""The real llama-server with the tiny model, spoken to directly (no gateway).

These pin the engine's wire behaviour that the gateway relies on: usage in plain and
streamed responses, the extra ``choices: []`` usage chunk, the Anthropic shape, and the
slot states.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from .llama_server import MODEL_ALIAS, LlamaServer
from .sse import SSEEvent, read_sse
from .tiny_model import ALLOWED_BYTES, N_EMBD

MAX_TOKENS = 8
MESSAGES = [{"role": "user", "content": "Say hello."}]
TIMEOUT = aiohttp.ClientTimeout(total=60)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # llama-server closes the connection after every streamed response (without saying
    # "Connection: close"), so a pooled connection can be dead when reused: no pooling.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=TIMEOUT, connector=connector) as session:
        yield session


async def post_json(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data


async def post_sse(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> list[SSEEvent]:
    async with http.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        return await read_sse(resp)


def assert_tiny_text(text: str) -> None:
    """The tiny model only ever produces lowercase letters and spaces."""
    assert set(text.encode()) <= ALLOWED_BYTES


def assert_usage(usage: dict[str, Any]) -> None:
    assert usage["completion_tokens"] == MAX_TOKENS
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_health(llama_server: LlamaServer, http: aiohttp.ClientSession) -> None:
    async with http.get(llama_server.base_url + "/health") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


async def test_models_lists_alias(llama_server: LlamaServer, http: aiohttp.ClientSession) -> None:
    async with http.get(llama_server.base_url + "/v1/models") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [MODEL_ALIAS]


async def test_chat_completion_has_usage(
    llama_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    body = await post_json(
        http,
        llama_server.base_url + "/v1/chat/completions",
        {"model": MODEL_ALIAS, "messages": MESSAGES, "max_tokens": MAX_TOKENS},
    )
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL_ALIAS
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["role"] == "assistant"
    assert_tiny_text(choice["message"]["content"])
    assert_usage(body["usage"])


def chat_content(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def test_chat_stream_with_include_usage(
    llama_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    events = await post_sse(
        http,
        llama_server.base_url + "/v1/chat/completions",
        {
            "model": MODEL_ALIAS,
            "messages": MESSAGES,
            "max_tokens": MAX_TOKENS,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    # Only the last chunk carries usage, and its choices are empty (as OpenAI does).
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert_usage(usage_chunk["usage"])
    assert all("usage" not in c for c in chunks[:-1])
    # The chunk before it closes the choice.
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-2]["choices"][0]["delta"] == {}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = chat_content(chunks)
    assert text
    assert_tiny_text(text)


async def test_chat_stream_without_usage(
    llama_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    events = await post_sse(
        http,
        llama_server.base_url + "/v1/chat/completions",
        {"model": MODEL_ALIAS, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": True},
    )
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_completions(llama_server: LlamaServer, http: aiohttp.ClientSession) -> None:
    body = await post_json(
        http,
        llama_server.base_url + "/v1/completions",
        {"model": MODEL_ALIAS, "prompt": "Once upon a time", "max_tokens": MAX_TOKENS},
    )
    assert body["object"] == "text_completion"
    assert body["choices"][0]["finish_reason"] == "length"
    assert_tiny_text(body["choices"][0]["text"])
    assert_usage(body["usage"])


async def test_completions_stream(llama_server: LlamaServer, http: aiohttp.ClientSession) -> None:
    events = await post_sse(
        http,
        llama_server.base_url + "/v1/completions",
        {
            "model": MODEL_ALIAS,
            "prompt": "Once upon a time",
            "max_tokens": MAX_TOKENS,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "length"
    assert_usage(final["usage"])
    assert all("usage" not in c for c in chunks[:-1])
    assert_tiny_text("".join(c["choices"][0]["text"] for c in chunks))


async def test_anthropic_messages(llama_server: LlamaServer, http: aiohttp.ClientSession) -> None:
    body = await post_json(
        http,
        llama_server.base_url + "/v1/messages",
        {"model": MODEL_ALIAS, "messages": MESSAGES, "max_tokens": MAX_TOKENS},
    )
    assert body["type"] == "message"
    assert body["stop_reason"] == "max_tokens"
    assert body["content"][0]["type"] == "text"
    assert_tiny_text(body["content"][0]["text"])
    usage = body["usage"]
    assert usage["output_tokens"] == MAX_TOKENS
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] > 0


async def test_anthropic_messages_stream(
    llama_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    events = await post_sse(
        http,
        llama_server.base_url + "/v1/messages",
        {"model": MODEL_ALIAS, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": True},
    )
    names = [e.event for e in events]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert all(e.json()["type"] == e.event for e in events)
    start_usage = events[0].json()["message"]["usage"]
    assert start_usage["output_tokens"] == 0
    assert start_usage["input_tokens"] + start_usage["cache_read_input_tokens"] > 0
    delta = events[-2].json()
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"]["output_tokens"] == MAX_TOKENS


async def test_embeddings(llama_server: LlamaServer, http: aiohttp.ClientSession) -> None:
    body = await post_json(
        http,
        llama_server.base_url + "/v1/embeddings",
        {"model": MODEL_ALIAS, "input": ["hello", "world"]},
    )
    assert body["object"] == "list"
    assert [(d["index"], d["object"]) for d in body["data"]] == [(0, "embedding"), (1, "embedding")]
    assert all(len(d["embedding"]) == N_EMBD for d in body["data"])
    assert body["usage"]["prompt_tokens"] > 0
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"]


def busy_slots(slots: list[dict[str, Any]]) -> int:
    return sum(1 for s in slots if s["is_processing"])


async def get_slots(llama_server: LlamaServer, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with http.get(llama_server.base_url + "/slots") as resp:
        assert resp.status == 200
        slots: list[dict[str, Any]] = await resp.json()
        return slots


async def test_slots_show_processing(
    llama_server: LlamaServer, http: aiohttp.ClientSession
) -> None:
    idle = await get_slots(llama_server, http)
    assert len(idle) == llama_server.parallel
    assert busy_slots(idle) == 0
    body = {
        "model": MODEL_ALIAS,
        "messages": MESSAGES,
        "max_tokens": 4000,  # a few seconds of work; the test disconnects long before
        "stream": True,
    }
    async with http.post(llama_server.base_url + "/v1/chat/completions", json=body) as resp:
        assert resp.status == 200
        await resp.content.readline()  # the first chunk has arrived: a slot is working
        during = await get_slots(llama_server, http)
        assert busy_slots(during) == 1
        resp.close()  # a client disconnect must free the slot
    for _ in range(100):
        if busy_slots(await get_slots(llama_server, http)) == 0:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("slot still processing after the client disconnected")
