"""HTTP that aiohttp's parser refuses, and bodies that stop arriving: every one gets an answer
in the OpenAI error shape, quoting none of the request's bytes; nothing is charged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.engine import FakeEngine

from .helpers import CHAT, Gateway, running_gateway
from .wire import assert_error_shape

MARK = "zq9MARKzq9"  # a string the refused bytes carry; the answer must not echo it


@pytest.fixture
async def paced(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[Gateway]:
    """A gateway that lets a client pause 0.5 s at most while sending a body."""
    timeouts = {"connect": 2, "first_byte": 30, "idle": 30, "client_body": 0.5}
    async with running_gateway(tmp_path, engine.base_url, timeouts=timeouts) as gw:
        yield gw


async def exchange(port: int, *parts: bytes, pause: float = 0.0, within: float = 10.0) -> bytes:
    """Send ``parts`` (``pause`` s apart), then read one response: the head and the
    Content-Length of body after it. (The server may linger before it closes a connection
    whose request it did not read to the end, so EOF is not waited for.)"""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(within):
            for n, part in enumerate(parts):
                if n and pause:
                    await asyncio.sleep(pause)
                writer.write(part)
                await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            _, headers, _ = split(head)
            return head + await reader.readexactly(int(headers["content-length"]))
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def split(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    return int(status_line.split()[1]), headers, body


def chat_head(gw: Gateway, *extra: str) -> bytes:
    lines = [
        f"POST {CHAT} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {gw.accounts.user_key}",
        "Content-Type: application/json",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


REFUSED_BY_THE_PARSER = {
    "bad header line": b"GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header "
    + MARK.encode()
    + b"\r\n\r\n",
    "bad chunk size": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n" + MARK.encode() + b"\r\n{}\r\n0\r\n\r\n",
    "NUL in a header": b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-A: a\x00"
    + MARK.encode()
    + b"\r\n\r\n",
    "bad version": b"GET /v1/models HTTP/9." + MARK.encode() + b"\r\nHost: x\r\n\r\n",
    "header too long": b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Long: "
    + MARK.encode() * 2000
    + b"\r\n\r\n",
}


@pytest.mark.parametrize("raw", REFUSED_BY_THE_PARSER.values(), ids=REFUSED_BY_THE_PARSER)
async def test_what_the_parser_refuses_is_answered_in_the_error_shape(
    gateway: Gateway, raw: bytes
) -> None:
    status, headers, body = split(await exchange(gateway.port, raw))
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    err = assert_error_shape(json.loads(body))
    assert (err["type"], err["code"]) == ("invalid_request_error", "malformed_request")
    assert err["message"].startswith("malformed HTTP request: ")
    assert MARK not in body.decode("latin-1")


async def test_a_chunk_size_broken_after_the_headers_ends_in_408_not_a_hang(
    paced: Gateway, engine: FakeEngine
) -> None:
    """aiohttp's parser refuses the broken framing but never tells the body being read; the
    gateway's own pace limit answers instead of leaving the client waiting forever."""
    head = chat_head(paced, "Transfer-Encoding: chunked")
    started = time.monotonic()
    raw = await exchange(paced.port, head, b"zz\r\n{}\r\n0\r\n\r\n", pause=0.3)
    waited = time.monotonic() - started
    status, _, body = split(raw)
    assert status == 408
    assert assert_error_shape(json.loads(body))["code"] == "request_body_timeout"
    assert waited < 5
    assert engine.requests == []


async def test_a_body_that_stops_arriving_ends_in_408(paced: Gateway, engine: FakeEngine) -> None:
    head = chat_head(paced, "Content-Length: 100")
    raw = await exchange(paced.port, head, b'{"model": "tiny", ', pause=0.05)
    status, _, body = split(raw)
    assert status == 408
    assert "nothing for 0.5s" in assert_error_shape(json.loads(body))["message"]
    assert engine.requests == []


async def test_a_slow_body_that_keeps_coming_is_read_whole(
    paced: Gateway, engine: FakeEngine
) -> None:
    """The limit is on each pause, not on the whole body: a slow client that keeps sending
    (here 0.3 s between pieces, 1.2 s in all) is served."""
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
    pieces = [body[i : i + 20].encode() for i in range(0, len(body), 20)]
    head = chat_head(paced, f"Content-Length: {len(body)}", "Connection: close")
    status, _, answer = split(await exchange(paced.port, head, *pieces, pause=0.3))
    assert status == 200, answer
    assert len(engine.requests) == 1


async def test_a_login_form_that_stops_arriving_ends_in_408(paced: Gateway) -> None:
    head = (
        b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60\r\n\r\n"
    )
    status, _, body = split(await exchange(paced.port, head, b"username=a&pass"))
    assert status == 408
    assert assert_error_shape(json.loads(body))["code"] == "request_body_timeout"


def _upload_head(gw: Gateway, length: int) -> bytes:
    lines = [
        "POST /v1/audio/transcriptions HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {gw.accounts.user_key}",
        "Content-Type: multipart/form-data; boundary=b0und",
        f"Content-Length: {length}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


_MODEL_PART = b'--b0und\r\nContent-Disposition: form-data; name="model"\r\n\r\ntiny\r\n'


@pytest.mark.parametrize("where", ["before the model field", "in the file, after it"])
async def test_an_upload_that_stops_arriving_ends_in_408(
    paced: Gateway, engine: FakeEngine, where: str
) -> None:
    """A multipart upload is read at the same pace as any body: the form's head, and the rest
    as it streams to the engine, which then runs nothing."""
    sent = b"--b0und\r\nContent-Disposition: form-"
    if where != "before the model field":
        sent = _MODEL_PART + b'--b0und\r\nContent-Disposition: form-data; name="file"; '
        sent += b'filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF'
    raw = await exchange(paced.port, _upload_head(paced, 4000), sent, pause=0.05)
    status, _, body = split(raw)
    assert status == 408, body
    assert assert_error_shape(json.loads(body))["code"] == "request_body_timeout"
    assert [r for r in engine.requests if r.path.startswith("/v1/audio")] == []
