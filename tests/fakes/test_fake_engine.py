"""Tests of the fake engine itself (real sockets on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .engine import FakeEngine, running_engine, start_engine

CHAT = "/v1/chat/completions"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    async with running_engine(models=["tiny", "big"]) as eng:
        yield eng


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def chat_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "tiny",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "one two three"}]},
        ],
        **extra,
    }


async def http_chunks(resp: aiohttp.ClientResponse) -> list[bytes]:
    """The body split at HTTP chunk boundaries (as the server wrote it)."""
    out: list[bytes] = []
    buf = b""
    async for data, end_of_chunk in resp.content.iter_chunks():
        buf += data
        if end_of_chunk:
            out.append(buf)
            buf = b""
    if buf:
        out.append(buf)
    return out


def events(chunks: list[bytes]) -> list[Any]:
    out: list[Any] = []
    for c in chunks:
        payload = c.decode().removeprefix("data: ").removesuffix("\n\n")
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


async def test_health_models_and_auth(session: aiohttp.ClientSession) -> None:
    async with running_engine(models=["a", "b"], api_key="k1") as eng:
        async with session.get(eng.base_url + "/health") as r:
            assert r.status == 200
            assert await r.json() == {"status": "ok"}
        async with session.get(eng.base_url + "/v1/models") as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "invalid_api_key"
        headers = {"Authorization": "Bearer k1"}
        async with session.get(eng.base_url + "/v1/models", headers=headers) as r:
            body = await r.json()
        assert body["object"] == "list"
        assert [(m["id"], m["object"], m["owned_by"]) for m in body["data"]] == [
            ("a", "model", "fake"),
            ("b", "model", "fake"),
        ]
        assert eng.health_checks == 1
        assert [(q.method, q.path) for q in eng.requests] == [
            ("GET", "/v1/models"),
            ("GET", "/v1/models"),
        ]
        assert eng.requests[-1].header("authorization") == "Bearer k1"


async def test_non_stream_usage(engine: FakeEngine, session: aiohttp.ClientSession) -> None:
    async with session.post(engine.base_url + CHAT, json=chat_body(max_tokens=3)) as r:
        body = await r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "tok0 tok1 tok2 "}
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    req = engine.requests[-1]
    assert req.body["max_tokens"] == 3
    assert ("Content-Type", "application/json") in req.headers

    prompt = {"model": "tiny", "prompt": "a b c d"}
    async with session.post(engine.base_url + "/v1/completions", json=prompt) as r:
        body = await r.json()
    assert body["choices"][0]["text"].split() == [f"tok{i}" for i in range(8)]
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}

    emb = {"model": "tiny", "input": ["x y", "z"]}
    async with session.post(engine.base_url + "/v1/embeddings", json=emb) as r:
        body = await r.json()
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


@pytest.mark.parametrize("include_usage", [None, False, True])
async def test_chat_stream(
    engine: FakeEngine, session: aiohttp.ClientSession, include_usage: bool | None
) -> None:
    extra: dict[str, Any] = {"stream": True, "max_tokens": 4}
    if include_usage is not None:
        extra["stream_options"] = {"include_usage": include_usage}
    async with session.post(engine.base_url + CHAT, json=chat_body(**extra)) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        chunks = await http_chunks(r)
    evs = events(chunks)  # one HTTP chunk per SSE event: written separately
    assert evs[0]["choices"][0]["delta"] == {"role": "assistant", "content": "tok0 "}
    assert [e["choices"][0]["delta"].get("content") for e in evs[:4]] == [
        "tok0 ",
        "tok1 ",
        "tok2 ",
        "tok3 ",
    ]
    assert evs[4]["choices"][0]["finish_reason"] == "stop"
    assert all(e["object"] == "chat.completion.chunk" for e in evs[:-1])
    assert evs[-1] == "[DONE]"
    if include_usage:
        assert len(evs) == 7
        assert evs[5]["choices"] == []
        assert evs[5]["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    else:
        assert len(evs) == 6
        assert not any("usage" in e for e in evs[:-1])
    assert engine.open_streams == 0
    assert engine.cancelled_streams == 0


async def test_completions_stream(engine: FakeEngine, session: aiohttp.ClientSession) -> None:
    body = {
        "model": "tiny",
        "prompt": "hi",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with session.post(engine.base_url + "/v1/completions", json=body) as r:
        evs = events(await http_chunks(r))
    assert [e["choices"][0]["text"] for e in evs[:8]] == [f"tok{i} " for i in range(8)]
    assert evs[8]["choices"][0]["finish_reason"] == "stop"
    assert evs[9]["usage"]["completion_tokens"] == 8
    assert evs[10] == "[DONE]"


async def test_anthropic_messages(engine: FakeEngine, session: aiohttp.ClientSession) -> None:
    body = {
        "model": "tiny",
        "max_tokens": 2,
        "system": "sys word",
        "messages": [{"role": "user", "content": "hello there world"}],
    }
    async with session.post(engine.base_url + "/v1/messages", json=body) as r:
        msg = await r.json()
    assert msg["type"] == "message"
    assert msg["content"] == [{"type": "text", "text": "tok0 tok1 "}]
    assert msg["usage"] == {"input_tokens": 5, "output_tokens": 2}

    async with session.post(engine.base_url + "/v1/messages", json={**body, "stream": True}) as r:
        chunks = await http_chunks(r)
    names = [c.decode().split("\n")[0].removeprefix("event: ") for c in chunks]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    datas = [json.loads(c.decode().split("\n")[1].removeprefix("data: ")) for c in chunks]
    assert [d["type"] for d in datas] == names
    assert datas[0]["message"]["usage"]["input_tokens"] == 5
    assert datas[2]["delta"] == {"type": "text_delta", "text": "tok0 "}
    assert datas[5]["usage"] == {"output_tokens": 2}


async def test_fault_responses(engine: FakeEngine, session: aiohttp.ClientSession) -> None:
    url = engine.base_url + CHAT
    async with session.post(url, json=chat_body(fake={"fault": "500"})) as r:
        assert r.status == 500
        assert await r.text() == "engine exploded"
    async with session.post(url, json=chat_body(stream=True, fake={"fault": "error_json"})) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "fake_error"
    async with session.post(
        url, json=chat_body(fake={"fault": "redirect"}), allow_redirects=False
    ) as r:
        assert r.status == 307
        assert r.headers["Location"] == "http://127.0.0.1:1/elsewhere"
    start = time.monotonic()
    body = chat_body(stream=True, fake={"fault": "slow_headers", "delay": 0.3})
    async with session.post(url, json=body) as r:
        assert time.monotonic() - start >= 0.3
        assert len(await http_chunks(r)) == 10


async def test_stall_headers(engine: FakeEngine, session: aiohttp.ClientSession) -> None:
    timeout = aiohttp.ClientTimeout(sock_read=0.3)
    body = chat_body(fake={"fault": "stall_headers"})
    with pytest.raises(asyncio.TimeoutError):
        await session.post(engine.base_url + CHAT, json=body, timeout=timeout)
    await engine.wait_until(lambda: engine.cancelled_requests == 1)
    assert engine.open_requests == 0
    assert engine.cancelled_streams == 0


async def test_stall_then_disconnect(engine: FakeEngine, session: aiohttp.ClientSession) -> None:
    body = chat_body(stream=True, fake={"fault": "stall", "after": 2})
    resp = await session.post(engine.base_url + CHAT, json=body)
    got = [await resp.content.readuntil(b"\n\n") for _ in range(2)]
    assert [json.loads(g[6:])["choices"][0]["delta"]["content"] for g in got] == ["tok0 ", "tok1 "]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(resp.content.readany(), 0.3)
    assert engine.open_streams == 1
    resp.close()
    await engine.wait_until(lambda: engine.cancelled_streams == 1)
    await engine.wait_until(lambda: engine.open_streams == 0)
    assert engine.cancelled_requests == 1


async def test_cutoff(engine: FakeEngine, session: aiohttp.ClientSession) -> None:
    body = chat_body(stream=True, fake={"fault": "cutoff", "after": 3})
    got: list[bytes] = []

    async def read_all(r: aiohttp.ClientResponse) -> None:
        async for data in r.content.iter_any():
            got.append(data)

    async with session.post(engine.base_url + CHAT, json=body) as r:
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_all(r)
    assert b"".join(got).count(b"data: ") == 3
    assert b"[DONE]" not in b"".join(got)
    assert engine.open_streams == 0
    assert engine.cancelled_streams == 0


async def test_token_delay_and_disconnect(
    engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = chat_body(stream=True, max_tokens=50, fake={"token_delay": 0.1})
    start = time.monotonic()
    resp = await session.post(engine.base_url + CHAT, json=body)
    await resp.content.readuntil(b"\n\n")
    await resp.content.readuntil(b"\n\n")
    assert 0.1 <= time.monotonic() - start < 2.0
    assert engine.open_streams == 1
    resp.close()
    await engine.wait_until(lambda: engine.cancelled_streams == 1)
    assert engine.open_streams == 0


async def test_close_with_stalled_stream_is_quick(session: aiohttp.ClientSession) -> None:
    eng = await start_engine()
    body = chat_body(stream=True, fake={"fault": "stall"})
    resp = await session.post(eng.base_url + CHAT, json=body)
    await eng.wait_until(lambda: eng.open_streams == 1)
    start = time.monotonic()
    await eng.close()
    assert time.monotonic() - start < 3.0
    resp.close()


def test_standalone_cli() -> None:
    argv = [sys.executable, "-m", "tests.fakes.engine", "--port", "0", "--models", "a,b"]
    with subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("fake engine listening on http://127.0.0.1:")
            url = line.split()[-1]
            with urllib.request.urlopen(url + "/v1/models", timeout=5) as r:  # noqa: S310
                assert [m["id"] for m in json.load(r)["data"]] == ["a", "b"]
        finally:
            proc.terminate()
            assert proc.wait(timeout=5) == 0


async def test_faults_without_stream(engine: FakeEngine, session: aiohttp.ClientSession) -> None:
    url = engine.base_url + CHAT
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await session.post(url, json=chat_body(fake={"fault": "cutoff"}))
    timeout = aiohttp.ClientTimeout(sock_read=0.3)
    with pytest.raises(asyncio.TimeoutError):
        await session.post(url, json=chat_body(fake={"fault": "stall"}), timeout=timeout)
    await engine.wait_until(lambda: engine.cancelled_requests == 1)
    async with session.post(url, json=chat_body(fake={"fault": "nope"})) as r:
        assert r.status == 400
    async with session.get(engine.base_url + "/nowhere") as r:
        assert r.status == 404
    assert engine.requests[-1].path == "/nowhere"


async def test_anthropic_faults(engine: FakeEngine, session: aiohttp.ClientSession) -> None:
    url = engine.base_url + "/v1/messages"
    body: dict[str, Any] = {
        "model": "tiny",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with session.post(url, json={**body, "fake": {"fault": "error_json"}}) as r:
        assert r.status == 400
        assert (await r.json())["type"] == "error"
    resp = await session.post(url, json={**body, "fake": {"fault": "stall", "after": 1}})
    got = [await resp.content.readuntil(b"\n\n") for _ in range(3)]
    assert [g.split(b"\n")[0] for g in got] == [
        b"event: message_start",
        b"event: content_block_start",
        b"event: content_block_delta",
    ]
    resp.close()
    await engine.wait_until(lambda: engine.cancelled_streams == 1)
