"""The engine runs exactly what the gateway checked: one canonical body, never the client's
bytes; whatever an engine could read another way is refused first."""

from __future__ import annotations

import codecs
import gzip
import json
import zlib
from pathlib import Path

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import CHAT, Gateway, bearer, chat_body, running_gateway
from .wire import assert_error_shape, parse_sse, raw_request

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # Go's encoding/json (Ollama, LocalAI) matches keys case-insensitively, last one wins.
        (b'{"model": "tiny", "MODEL": "big", "messages": []}', "ambiguous_key"),
        (b'{"model": "tiny", "messages": [], "\\u006dodel": "big"}', "duplicate_key"),
        (b'{"model": "tiny", "messages": [], "model": "big"}', "duplicate_key"),
        (b'{"model": "tiny", "messages": [], "Max_Tokens": 4000}', "ambiguous_key"),
        (b'{"model": "tiny", "messages": [], "stream": true, "stream_options": '
         b'{"include_usage": true}, "stream_options": null}', "duplicate_key"),
        (b'{"model": "tiny", "messages": [], "stream": true, "stream_options": '
         b'{"include_usage": "false"}}', "invalid_stream_options"),
        (b'{"model": "tiny", "messages": [], "temperature": NaN}', "invalid_number"),
        (b'{"model": "tiny", "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "too_deep"),
    ],
    ids=["MODEL", "escaped-model", "model-twice", "Max_Tokens", "stream_options-twice",
         "include_usage-string", "NaN", "nested-50000"],
)  # fmt: skip
async def test_what_an_engine_could_read_another_way_is_refused(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession, body: bytes, code: str
) -> None:
    headers = {**bearer(gateway.accounts.restricted_key), **JSON}  # rita may use tiny only
    async with session.post(gateway.url(CHAT), headers=headers, data=body) as r:
        assert r.status == 400, await r.text()
        assert assert_error_shape(await r.json())["code"] == code
    assert engine.requests == []


async def test_a_null_stream_options_cannot_switch_off_the_usage_report(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = json.dumps({**chat_body(stream=True, max_tokens=3), "stream_options": None})
    headers = {**bearer(gateway.accounts.user_key), **JSON}
    async with session.post(gateway.url(CHAT), headers=headers, data=body) as r:
        assert r.status == 200
        events = [e.json() for e in parse_sse(await r.read()) if e.data != "[DONE]"]
    assert events and all("usage" not in e for e in events)  # the client did not ask for it
    assert engine.requests[0].body["stream_options"] == {"include_usage": True}
    (row,) = await gateway.usage(1)
    assert (row.usage_source, row.completion_tokens) == ("engine", 3)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
async def test_utf16_and_utf32_bodies_stream_and_reach_the_engine_as_utf8(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession, codec: str
) -> None:
    body = chat_body(stream=True, max_tokens=2)
    body["messages"][1]["content"] = "naïve 中文 words"
    headers = {**bearer(gateway.accounts.user_key), **JSON}
    data = codecs.encode(json.dumps(body, ensure_ascii=False), codec)
    async with session.post(gateway.url(CHAT), headers=headers, data=data) as r:
        assert r.status == 200, await r.text()
        await r.read()
    seen = engine.requests[0]
    assert json.loads(seen.raw_body.decode("utf-8"))["messages"] == body["messages"]
    assert (await gateway.usage(1))[0].usage_source == "engine"


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _two_gzip_members(data: bytes) -> bytes:
    return gzip.compress(data[:10]) + gzip.compress(data[10:])


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("GZip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", _raw_deflate),
        ("gzip", _two_gzip_members),
    ],
)
async def test_compressed_bodies_work_end_to_end(
    gateway: Gateway,
    engine: FakeEngine,
    session: aiohttp.ClientSession,
    encoding: str,
    compress: object,
) -> None:
    assert callable(compress)
    body = chat_body(max_tokens=2)
    headers = [
        *bearer(gateway.accounts.user_key).items(),
        *JSON.items(),
        ("Content-Encoding", encoding),
    ]
    r = await raw_request(gateway.port, "POST", CHAT, headers, compress(json.dumps(body).encode()))
    assert r.status == 200, r.body
    seen = engine.requests[0]
    assert seen.header("content-encoding") is None
    assert seen.body["messages"] == body["messages"]


@pytest.mark.parametrize("encoding", ["compress", "gzip, gzip", "x-custom", "br", "zstd"])
async def test_other_content_encodings_are_415(
    gateway: Gateway, engine: FakeEngine, encoding: str
) -> None:
    headers = [
        *bearer(gateway.accounts.user_key).items(),
        *JSON.items(),
        ("Content-Encoding", encoding),
    ]
    r = await raw_request(gateway.port, "POST", CHAT, headers, gzip.compress(b"{}"))
    assert r.status == 415, r.body
    assert assert_error_shape(r.json())["code"] == "unsupported_content_encoding"
    assert engine.requests == []


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"not gzip at all"),
        ("deflate", b"\x00\x01 not deflate"),
        ("gzip", gzip.compress(json.dumps(chat_body()).encode())[:-12]),  # cut short
        ("deflate", zlib.compress(b"{}") + b"trailing"),
    ],
    ids=["gzip-garbage", "deflate-garbage", "gzip-truncated", "deflate-trailing"],
)
async def test_bodies_that_do_not_decompress_are_400(
    gateway: Gateway, engine: FakeEngine, encoding: str, body: bytes
) -> None:
    headers = [
        *bearer(gateway.accounts.user_key).items(),
        *JSON.items(),
        ("Content-Encoding", encoding),
    ]
    r = await raw_request(gateway.port, "POST", CHAT, headers, body)
    assert r.status == 400, r.body
    assert assert_error_shape(r.json())["code"] == "invalid_content_encoding"
    assert engine.requests == []


async def test_a_compressed_body_is_held_to_max_request_mb_once_decompressed(
    tmp_path: Path, engine: FakeEngine
) -> None:
    async with running_gateway(tmp_path, engine.base_url, max_request_mb=0.01) as gw:
        body = chat_body(messages=[{"role": "user", "content": " " * 1_000_000}])
        bomb = gzip.compress(json.dumps(body).encode())
        assert len(bomb) < 10_000
        headers = [
            *bearer(gw.accounts.user_key).items(),
            *JSON.items(),
            ("Content-Encoding", "gzip"),
        ]
        r = await raw_request(gw.port, "POST", CHAT, headers, bomb)
    assert r.status == 413, r.body
    assert assert_error_shape(r.json())["code"] == "request_too_large"
    assert engine.requests == []
