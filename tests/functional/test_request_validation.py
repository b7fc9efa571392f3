"""Bodies the gateway refuses itself: too large, not JSON, no model. The engine sees none."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import (
    CHAT,
    EMBEDDINGS,
    MESSAGES,
    Gateway,
    bearer,
    chat_body,
    running_gateway,
)
from .wire import assert_error_shape

LIMIT_MB = 0.01  # 10485 bytes


async def test_body_over_max_request_mb_is_413(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url, max_request_mb=LIMIT_MB) as gw:
        headers = bearer(gw.accounts.user_key)
        limit = int(LIMIT_MB * 1024 * 1024)
        big = chat_body(messages=[{"role": "user", "content": "w " * limit}])
        async with session.post(gw.url(CHAT), headers=headers, json=big) as r:
            assert r.status == 413
            assert assert_error_shape(await r.json())["code"] == "request_too_large"

        async def chunks() -> object:  # no Content-Length: the limit holds for chunked too
            yield json.dumps(big).encode()

        async with session.post(gw.url(CHAT), headers=headers, data=chunks()) as r:
            assert r.status == 413
            assert_error_shape(await r.json())
        assert engine.requests == []
        small = chat_body(messages=[{"role": "user", "content": "w " * (limit // 4)}])
        async with session.post(gw.url(CHAT), headers=headers, json=small) as r:
            assert r.status == 200
        assert len(engine.requests) == 1


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        (CHAT, b"", "invalid_json"),
        (CHAT, b"not json at all", "invalid_json"),
        (CHAT, b'{"model": "tiny", ', "invalid_json"),
        (CHAT, b"\xff\xfe\x00garbage", "invalid_json"),
        (CHAT, b'["model", "tiny"]', "invalid_json"),
        (CHAT, b'{"messages": []}', "missing_model"),
        (CHAT, b'{"model": "", "messages": []}', "missing_model"),
        (CHAT, b'{"model": 7, "messages": []}', "missing_model"),
        (CHAT, b'{"model": "tiny", "stream": "yes"}', "invalid_stream"),
        (CHAT, b'{"model": "tiny", "stream": true, "stream_options": 1}', None),
        (EMBEDDINGS, b'{"model": "tiny", "input": "a", "stream": true}', "invalid_stream"),
        (MESSAGES, b"{}", "missing_model"),
    ],
)
async def test_bad_bodies_are_400(
    gateway: Gateway,
    engine: FakeEngine,
    session: aiohttp.ClientSession,
    path: str,
    body: bytes,
    code: str | None,
) -> None:
    headers = {**bearer(gateway.accounts.user_key), "Content-Type": "application/json"}
    async with session.post(gateway.url(path), headers=headers, data=body) as r:
        assert r.status == 400
        err = assert_error_shape(await r.json())
    assert err["type"] == "invalid_request_error"
    if code is not None:
        assert err["code"] == code
    assert engine.requests == []
