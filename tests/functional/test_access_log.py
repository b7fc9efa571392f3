"""The access log: a request its client abandons is a 499 there, not a 500 with a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import CHAT, Gateway, bearer, chat_body


class _Records(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Logs:
    access: _Records  # authproxy.access, INFO and up
    errors: _Records  # anything under authproxy at ERROR and up

    async def line(
        self, path: str, within: float = 5.0, *, user: str | None = None
    ) -> dict[str, Any]:
        """The access log line of the request to `path` (by `user`, if given), once written."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            for record in self.access.records:
                line: dict[str, Any] = json.loads(record.getMessage())
                if line["path"] == path and user in (None, line["user"]):
                    return line
            await asyncio.sleep(0.02)
        raise AssertionError(f"no access log line for {path}")


@contextlib.contextmanager
def _captured(name: str, level: int) -> Iterator[_Records]:
    """Every record of logger `name` at `level` or above, whatever handlers it has otherwise."""
    logger, records = logging.getLogger(name), _Records(level)
    before = logger.level
    logger.setLevel(min(level, logger.getEffectiveLevel()))
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)
        logger.setLevel(before)


@contextlib.contextmanager
def gateway_logs() -> Iterator[Logs]:
    with (
        _captured("authproxy.access", logging.INFO) as access,
        _captured("authproxy", logging.ERROR) as errors,
    ):
        yield Logs(access, errors)


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


async def _read_stream_until(
    session: aiohttp.ClientSession, gateway: Gateway, logs: Logs, body: Any, until: bytes
) -> dict[str, Any]:
    """Stream `body` as alice, read up to `until`, hang up; the request's access line."""
    resp = await session.post(
        gateway.url(CHAT), headers=bearer(gateway.accounts.user_key), json=body
    )
    assert resp.status == 200
    await resp.content.readuntil(until)
    resp.close()
    return await logs.line(CHAT)


@pytest.mark.parametrize("path", ["/auth/login", CHAT])
async def test_a_client_that_hangs_up_mid_body_is_a_499(gateway: Gateway, path: str) -> None:
    with gateway_logs() as logs:
        await _send_half_a_body(gateway, path, dict(bearer(gateway.accounts.user_key)))
        line = await logs.line(path)
    assert (line["status"], line["error"]) == (499, "client_closed_request")
    assert logs.errors.records == []


async def test_a_client_that_gives_up_waiting_for_the_engine_is_a_499(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    with gateway_logs() as logs:
        body = chat_body(fake={"fault": "stall_headers"})
        request = asyncio.ensure_future(
            session.post(gateway.url(CHAT), headers=bearer(gateway.accounts.user_key), json=body)
        )
        await engine.wait_until(lambda: engine.open_requests == 1, within=5.0)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        line = await logs.line(CHAT)
    assert line["status"] == 499 and line["user"] == "alice"
    assert logs.errors.records == []
    [row] = await gateway.usage(1)
    assert row.status == 499  # the usage row agrees


async def test_a_client_that_leaves_mid_stream_is_a_499(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    with gateway_logs() as logs:
        body = chat_body(stream=True, max_tokens=20, fake={"token_delay": 0.2})
        line = await _read_stream_until(session, gateway, logs, body, b"\n\n")  # one event
    assert (line["status"], line["error"]) == (499, "client_disconnected")
    assert logs.errors.records == []


async def test_a_client_that_leaves_after_the_last_event_was_served_whole(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    """It read `[DONE]` and hung up while the engine still held the stream's end open (Codex
    does, once the response is complete): nothing was cut short, so no 499 and no error."""
    with gateway_logs() as logs:
        body = chat_body(stream=True, max_tokens=3, fake={"fault": "linger", "delay": 2})
        line = await _read_stream_until(session, gateway, logs, body, b"data: [DONE]\n\n")
    assert (line["status"], line["error"]) == (200, None)
    assert line["duration_ms"] < 1500  # it ended with the client, not with the engine's linger
    assert logs.errors.records == []
    [row] = await gateway.usage(1)
    assert row.status == 200
