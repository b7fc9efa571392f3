"""SIGTERM to `authproxy serve` (a real process): open streams finish, new connections are
refused at once, the process exits 0 and no usage row is lost."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import aiohttp
from fakes.engine import FakeEngine

from .helpers import (
    CHAT,
    bearer,
    chat_body,
    wait_usage,
)
from .serve_process import serve_process
from .wire import parse_sse

GRACE = 10.0


async def _refused_soon(base_url: str, within: float) -> str:
    """Open new connections until one is refused; a request that hangs fails the test."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=2.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as s:
        while loop.time() < deadline:
            try:
                async with s.get(base_url + "/healthz") as r:
                    await r.read()
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
                return type(exc).__name__
            except TimeoutError as exc:
                raise AssertionError("a request after SIGTERM hung") from exc
            await asyncio.sleep(0.05)
    raise AssertionError(f"new connections still accepted {within}s after SIGTERM")


async def test_sigterm_drains_open_streams_and_loses_no_row(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with serve_process(tmp_path, engine, shutdown_grace=GRACE) as gw:
        body = chat_body(stream=True, fake={"token_delay": 0.3})  # 8 tokens: about 2.1 s
        started = time.monotonic()
        async with session.post(
            gw.base_url + CHAT, headers=bearer(gw.accounts.user_key), json=body
        ) as r:
            assert r.status == 200
            first = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 10)
            gw.proc.send_signal(signal.SIGTERM)
            refusal = asyncio.create_task(_refused_soon(gw.base_url, within=5.0))
            rest = await asyncio.wait_for(r.content.read(), GRACE)
            how_refused = await refusal
        took = time.monotonic() - started
        events = parse_sse(first + rest)
        assert events[-1].data == "[DONE]"
        texts = [e.json()["choices"][0]["delta"].get("content") for e in events[:8]]
        assert texts == [f"tok{i} " for i in range(8)]
        assert took < GRACE
        assert how_refused

        assert await asyncio.wait_for(gw.proc.wait(), GRACE + 10) == 0
        rows = await wait_usage(gw.config.db_path, 1, within=1.0)
        assert len(rows) == 1  # the only forwarded request
        row = rows[0]
        assert (row.completion_tokens, row.prompt_tokens, row.usage_source) == (8, 5, "engine")
        assert (row.status, row.user_id) == (200, gw.accounts.user_id)
        log = "".join(gw.log)
    # Logged, and no key in it.
    assert "shutting down" in log
    for key in (gw.accounts.user_key, gw.accounts.admin_key, gw.accounts.restricted_key):
        assert key not in log
        assert key[10:] not in log


async def test_sigterm_when_idle_exits_at_once(tmp_path: Path, engine: FakeEngine) -> None:
    async with serve_process(tmp_path, engine, shutdown_grace=GRACE) as gw:
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gw.proc.wait(), GRACE + 10) == 0
        assert time.monotonic() - started < GRACE / 2  # no open stream: no waiting for grace


async def test_stream_longer_than_grace_is_cut_but_charged(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    grace = 1.0
    async with serve_process(tmp_path, engine, shutdown_grace=grace) as gw:
        body = chat_body(
            stream=True, max_tokens=40, ignore_eos=True, fake={"token_delay": 0.25}
        )  # about 10 s
        async with session.post(
            gw.base_url + CHAT, headers=bearer(gw.accounts.user_key), json=body
        ) as r:
            assert r.status == 200
            await asyncio.wait_for(r.content.readuntil(b"\n\n"), 10)
            signalled = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(aiohttp.ClientPayloadError):
                await asyncio.wait_for(r.content.read(), grace + 10)
        assert await asyncio.wait_for(gw.proc.wait(), grace + 10) == 0
        assert time.monotonic() - signalled < grace + 5
        rows = await wait_usage(gw.config.db_path, 1, within=1.0)
    assert len(rows) == 1
    assert rows[0].usage_source == "estimated"
    assert 1 <= rows[0].completion_tokens < 40
    await engine.wait_until(lambda: engine.open_streams == 0, within=2.0)
