"""An engine that redirects, fails, is down, stalls or dies mid-stream: a clear OpenAI-shaped
error or a terminated stream, never a hang."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
from fakes.engine import FakeEngine

from .helpers import (
    CHAT,
    Gateway,
    bearer,
    chat_body,
    free_port,
    running_gateway,
)
from .wire import assert_error_shape, parse_sse


async def _post(
    session: aiohttp.ClientSession, gw: Gateway, body: dict[str, Any]
) -> tuple[int, Any, float]:
    started = time.monotonic()
    async with session.post(gw.url(CHAT), headers=bearer(gw.accounts.user_key), json=body) as r:
        payload = await r.json(content_type=None)
        assert r.headers["X-Request-Id"]
        return r.status, payload, time.monotonic() - started


async def test_redirect_is_never_followed(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    status, body, _ = await _post(session, gateway, chat_body(fake={"fault": "redirect"}))
    assert status == 502
    assert assert_error_shape(body)["code"] == "upstream_redirect"
    assert len(engine.requests) == 1


async def test_engine_500_plain_text_becomes_502_json(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    for stream in (False, True):
        status, body, _ = await _post(
            session, gateway, chat_body(stream=stream, fake={"fault": "500"})
        )
        assert status == 502
        err = assert_error_shape(body)
        assert err["type"] == "upstream_error"
        assert "engine exploded" not in err["message"]


async def test_engine_openai_error_is_relayed_as_is(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    for stream in (False, True):
        status, body, _ = await _post(
            session, gateway, chat_body(stream=stream, fake={"fault": "error_json"})
        )
        assert status == 400
        assert body == {
            "error": {
                "message": "fake engine error (error_json fault)",
                "type": "invalid_request_error",
                "param": None,
                "code": "fake_error",
            }
        }


async def test_engine_down_is_502_at_once(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    async with running_gateway(tmp_path, f"http://127.0.0.1:{free_port()}") as gw:
        for stream in (False, True):
            status, body, took = await _post(session, gw, chat_body(stream=stream))
            assert status == 502
            assert assert_error_shape(body)["code"] == "upstream_unavailable"
            assert took < 2.0


async def test_no_headers_within_first_byte_timeout_is_504(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url, timeouts={"first_byte": 1}) as gw:
        for stream in (False, True):
            status, body, took = await _post(
                session, gw, chat_body(stream=stream, fake={"fault": "stall_headers"})
            )
            assert status == 504
            assert assert_error_shape(body)["code"] == "upstream_timeout"
            assert 0.9 <= took <= 3.5
        # The gateway hung up, so the engine saw both requests go away.
        await engine.wait_until(lambda: engine.cancelled_requests == 2, within=2.0)


async def _stream(
    session: aiohttp.ClientSession, gw: Gateway, body: dict[str, Any]
) -> tuple[bytes, float]:
    started = time.monotonic()
    async with session.post(gw.url(CHAT), headers=bearer(gw.accounts.user_key), json=body) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        return await r.read(), time.monotonic() - started


def _content_and_error(raw: bytes) -> tuple[list[str], dict[str, Any]]:
    events = parse_sse(raw)
    *content, last = events
    assert all(e.data != "[DONE]" for e in events)
    texts = [e.json()["choices"][0]["delta"]["content"] for e in content]
    return texts, last.json()


async def test_mid_stream_stall_ends_with_an_error_event(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url, timeouts={"idle": 1}) as gw:
        body = chat_body(stream=True, fake={"fault": "stall", "after": 2})
        raw, took = await _stream(session, gw, body)
        texts, last = _content_and_error(raw)
        assert texts == ["tok0 ", "tok1 "]
        assert assert_error_shape(last)["code"] == "upstream_timeout"
        assert 0.9 <= took <= 4.0
        await engine.wait_until(lambda: engine.cancelled_streams == 1, within=2.0)
        rows = await gw.usage(1)
    assert (rows[0].completion_tokens, rows[0].usage_source) == (2, "estimated")


async def test_stall_before_first_token_ends_with_an_error_event(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    """Headers came, then nothing: first_byte bounds the wait for the first event."""
    timeouts = {"first_byte": 1, "idle": 30}
    async with running_gateway(tmp_path, engine.base_url, timeouts=timeouts) as gw:
        body = chat_body(stream=True, fake={"fault": "stall", "after": 0})
        raw, took = await _stream(session, gw, body)
        texts, last = _content_and_error(raw)
        assert texts == []
        assert assert_error_shape(last)["code"] == "upstream_timeout"
        assert 0.9 <= took <= 4.0
        await engine.wait_until(lambda: engine.cancelled_streams == 1, within=2.0)


async def test_engine_dropping_the_connection_before_headers_is_502(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    status, body, took = await _post(session, gateway, chat_body(fake={"fault": "cutoff"}))
    assert status == 502
    assert assert_error_shape(body)["type"] == "upstream_error"
    assert took < 5.0


async def test_cutoff_mid_stream_ends_with_error_event_and_is_charged(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    body = chat_body(stream=True, fake={"fault": "cutoff", "after": 3})
    raw, _ = await _stream(session, gateway, body)
    texts, last = _content_and_error(raw)
    assert texts == ["tok0 ", "tok1 ", "tok2 "]
    assert assert_error_shape(last)["code"] == "upstream_cut_off"
    rows = await gateway.usage(1)
    row = rows[0]
    assert (row.usage_source, row.completion_tokens, row.stream) == ("estimated", 3, True)
    assert row.prompt_tokens > 0  # estimated from the request, not left at zero
    assert row.key_id == gateway.accounts.user_key_id


async def test_first_byte_timeout_does_not_bound_gaps_between_tokens(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    timeouts = {"first_byte": 0.5, "idle": 10}
    async with running_gateway(tmp_path, engine.base_url, timeouts=timeouts) as gw:
        body = chat_body(stream=True, max_tokens=3, fake={"token_delay": 1.0})
        raw, _ = await _stream(session, gw, body)
    events = parse_sse(raw)
    assert events[-1].data == "[DONE]", events[-1]
    assert [e.json()["choices"][0]["delta"].get("content") for e in events[:3]] == [
        "tok0 ",
        "tok1 ",
        "tok2 ",
    ]
