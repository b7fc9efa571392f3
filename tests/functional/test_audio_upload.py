"""Multipart audio uploads: the model is a form field, the body goes to the engine as the
client sent it (the same bytes, streamed), and what an engine would read differently — a second
model field after the file — stops the upload before the engine runs anything."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .catalogue_samples import multipart
from .helpers import Gateway, bearer, running_gateway
from .wire import assert_error_shape

TRANSCRIBE = "/v1/audio/transcriptions"


async def _upload(
    session: aiohttp.ClientSession,
    gateway: Gateway,
    body: bytes | AsyncIterator[bytes],
    content_type: str,
    key: str | None = None,
) -> tuple[int, dict[str, object]]:
    headers = {**bearer(key or gateway.accounts.user_key), "Content-Type": content_type}
    async with session.post(gateway.url(TRANSCRIBE), data=body, headers=headers) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("model_first", [True, False])
async def test_the_engine_gets_the_clients_bytes(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession, model_first: bool
) -> None:
    audio = bytes(range(256)) * 40  # every byte value, boundary-like runs included
    body, content_type = multipart("tiny", audio=audio, model_first=model_first,
                                   extra=(("language", "en"),))  # fmt: skip
    status, answer = await _upload(session, gateway, body, content_type)
    assert status == 200, answer
    assert answer["model_seen"] == ["tiny"] and answer["file_bytes"] == len(audio)
    (seen,) = engine.requests
    assert seen.raw_body == body
    assert seen.header("content-type") == content_type
    (row,) = await gateway.usage(1)
    assert (row.prompt_tokens, row.completion_tokens) == (len(audio) // 1024, 5)


async def test_a_chunked_upload_streams_through(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body, content_type = multipart("tiny", audio=b"\1" * 300_000)

    async def pieces() -> AsyncIterator[bytes]:
        for at in range(0, len(body), 7777):  # chunks that split the boundaries anywhere
            yield body[at : at + 7777]
            await asyncio.sleep(0)

    status, answer = await _upload(session, gateway, pieces(), content_type)
    assert status == 200, answer
    assert engine.requests[0].raw_body == body


async def test_an_alias_is_rewritten_in_the_held_bytes(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url, model_aliases={"whisper": "tiny"}) as gw:
        body, content_type = multipart("whisper")
        status, answer = await _upload(session, gw, body, content_type)
    assert status == 200, answer
    assert answer["model_seen"] == ["tiny"]
    assert engine.requests[0].raw_body == body.replace(b"\r\n\r\nwhisper\r\n", b"\r\n\r\ntiny\r\n")


async def test_a_second_model_field_after_the_file_stops_the_upload(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    # rita may use tiny, not big; an engine reads the last model field.
    body, content_type = multipart("tiny", audio=b"\0" * 200_000, extra=(("model", "big"),))
    head = body.index(b"\0")

    async def pieces() -> AsyncIterator[bytes]:  # the head first: the upload is under way
        yield body[:head]
        await asyncio.sleep(0.2)
        for at in range(head, len(body), 50_000):
            yield body[at : at + 50_000]

    status, answer = await _upload(
        session, gateway, pieces(), content_type, gateway.accounts.restricted_key
    )
    assert (status, assert_error_shape(answer)["code"]) == (400, "ambiguous_key")
    assert all(b'name="model"\r\n\r\nbig' not in q.raw_body for q in engine.requests)
    (row,) = await gateway.usage(1)
    assert (row.prompt_tokens, row.completion_tokens) == (0, 0)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{}", "application/json", 415, "unsupported_content_type"),
        (b"--x\r\n", "multipart/form-data", 400, "invalid_multipart"),
        (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
            b"A\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
            400,
            "missing_model",
        ),
        (
            b'--x\r\nContent-Disposition: form-data; name="Model"\r\n\r\ntiny\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            400,
            "ambiguous_key",
        ),
        (
            b"--x\r\nContent-Type: text/plain\r\n\r\ntiny\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
            400,
            "invalid_multipart",
        ),
    ],
)
async def test_bad_forms_are_refused_before_the_engine(
    gateway: Gateway,
    engine: FakeEngine,
    session: aiohttp.ClientSession,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    got, answer = await _upload(session, gateway, body, content_type)
    assert (got, assert_error_shape(answer)["code"]) == (status, code)
    assert engine.requests == []


async def test_an_upload_over_max_request_mb_is_413(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url, max_request_mb=0.1) as gw:
        body, content_type = multipart("tiny", audio=b"\0" * 200_000)
        status, answer = await _upload(session, gw, body, content_type)
        assert (status, assert_error_shape(answer)["code"]) == (413, "request_too_large")

        async def pieces() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for at in range(0, len(body), 10_000):
                yield body[at : at + 10_000]

        status, answer = await _upload(session, gw, pieces(), content_type)
        assert status in (400, 413), answer
        assert_error_shape(answer)
    # Neither upload was answered by the engine (the second was stopped mid-way).
    assert all(json.dumps(q.body or {}).find("file_bytes") < 0 for q in engine.requests)
    assert all(len(q.raw_body) < len(body) for q in engine.requests)
