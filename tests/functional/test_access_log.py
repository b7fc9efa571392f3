"""The access log: a request its client abandons is a 499 there, not a 500 with a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import CHAT, Gateway, bearer, chat_body


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured(name: str, level: int) -> Iterator[_Lines]:
    """Every record of logger `name` at `level` or above, whatever handlers it has otherwise."""
    logger, lines = logging.getLogger(name), _Lines()
    before = logger.level
    logger.setLevel(level)
    logger.addHandler(lines)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(before)


async def _access_line(lines: _Lines, path: str, within: float = 5.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        for record in lines.records:
            line: dict[str, Any] = json.loads(record.getMessage())
            if line["path"] == path:
                return line
        await asyncio.sleep(0.02)
    raise AssertionError(f"no access log line for {path}")


async def _send_half_a_body(gateway: Gateway, path: str, headers: dict[str, str]) -> None:
    """Headers and part of the body, then the client hangs up (the handler is reading it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{gateway.port}", "Content-Length: 1000"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head += ["Content-Type: application/x-www-form-urlencoded"]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + b"username=al")
    await writer.drain()
    await asyncio.sleep(0.2)  # the handler is waiting for the rest
    assert not reader.at_eof()  # nothing answered yet
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


@pytest.mark.parametrize("path", ["/auth/login", CHAT])
async def test_a_client_that_hangs_up_mid_body_is_a_499(gateway: Gateway, path: str) -> None:
    with (
        captured("authproxy.access", logging.INFO) as access,
        captured("authproxy", logging.ERROR) as errors,
    ):
        await _send_half_a_body(gateway, path, dict(bearer(gateway.accounts.user_key)))
        line = await _access_line(access, path)
    assert (line["status"], line["error"]) == (499, "client_closed_request")
    assert [r for r in errors.records if r.levelno >= logging.ERROR] == []


async def test_a_client_that_gives_up_waiting_for_the_engine_is_a_499(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    with (
        captured("authproxy.access", logging.INFO) as access,
        captured("authproxy", logging.ERROR) as errors,
    ):
        body = chat_body(fake={"fault": "stall_headers"})
        request = asyncio.ensure_future(
            session.post(gateway.url(CHAT), headers=bearer(gateway.accounts.user_key), json=body)
        )
        await engine.wait_until(lambda: engine.open_requests == 1, within=5.0)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        line = await _access_line(access, CHAT)
    assert line["status"] == 499 and line["user"] == "alice"
    assert [r for r in errors.records if r.levelno >= logging.ERROR] == []
    [row] = await gateway.usage(1)
    assert row.status == 499  # the usage row agrees


async def test_a_client_that_leaves_mid_stream_is_a_499(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    with (
        captured("authproxy.access", logging.INFO) as access,
        captured("authproxy", logging.ERROR) as errors,
    ):
        body = chat_body(stream=True, max_tokens=20, fake={"token_delay": 0.2})
        resp = await session.post(
            gateway.url(CHAT), headers=bearer(gateway.accounts.user_key), json=body
        )
        assert resp.status == 200
        await resp.content.readuntil(b"\n\n")
        resp.close()
        line = await _access_line(access, CHAT)
    assert (line["status"], line["error"]) == (499, "client_disconnected")
    assert [r for r in errors.records if r.levelno >= logging.ERROR] == []
