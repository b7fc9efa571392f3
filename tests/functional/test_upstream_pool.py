"""Several upstreams for one model: load spreads, a dead one is ejected and its requests fail
over without the client noticing, it comes back once healthy, and nothing fails over once the
client has the response headers."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from fakes.engine import FakeEngine, start_engine

from .helpers import CHAT, Gateway, bearer, chat_body, running_gateway
from .wire import assert_error_shape, parse_sse

FAST_CHECKS = {"interval": 0.1, "timeout": 1, "unhealthy_after": 1, "healthy_after": 2}


def pool(*engines: FakeEngine, names: str = "ab") -> list[dict[str, Any]]:
    return [
        {"name": name, "url": e.base_url, "models": ["tiny"]}
        for name, e in zip(names, engines, strict=False)
    ]


@asynccontextmanager
async def two_engines() -> AsyncIterator[tuple[FakeEngine, FakeEngine]]:
    a = await start_engine(models=["tiny"])
    b = await start_engine(models=["tiny"])
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def chats(engine: FakeEngine) -> int:
    return sum(1 for q in engine.requests if q.path == CHAT)


async def chat(
    session: aiohttp.ClientSession, gw: Gateway, **extra: Any
) -> tuple[int, dict[str, Any]]:
    """(status, JSON body); a stream that did not end with [DONE] counts as status 0."""
    async with session.post(
        gw.url(CHAT), headers=bearer(gw.accounts.user_key), json=chat_body(**extra)
    ) as r:
        if r.status == 200 and extra.get("stream"):
            events = parse_sse(await r.read())
            return (200 if events and events[-1].data == "[DONE]" else 0), {}
        return r.status, await r.json(content_type=None)


async def readyz_upstreams(session: aiohttp.ClientSession, gw: Gateway) -> dict[str, bool]:
    async with session.get(gw.url("/readyz")) as r:
        states: dict[str, bool] = (await r.json())["upstreams"]
        return states


async def wait_health(
    session: aiohttp.ClientSession, gw: Gateway, want: dict[str, bool], within: float = 5.0
) -> None:
    deadline = time.monotonic() + within
    while (seen := await readyz_upstreams(session, gw)) != want:
        assert time.monotonic() < deadline, f"upstream health {seen}, wanted {want}"
        await asyncio.sleep(0.05)


async def test_load_spreads_over_both_upstreams(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with two_engines() as (a, b):
        a.fake = b.fake = {"fault": "slow_headers", "delay": 0.05}
        async with running_gateway(tmp_path, a.base_url, upstreams=pool(a, b)) as gw:
            # Concurrent: least outstanding requests balances them.
            results = await asyncio.gather(*(chat(session, gw) for _ in range(40)))
            assert [s for s, _ in results] == [200] * 40
            assert chats(a) + chats(b) == 40
            assert min(chats(a), chats(b)) >= 15, (chats(a), chats(b))
            # One at a time (always a tie at zero): they take turns.
            for _ in range(10):
                assert (await chat(session, gw))[0] == 200
            assert chats(a) + chats(b) == 50
            assert min(chats(a), chats(b)) >= 20
            rows = await gw.usage(50)
        assert Counter(r.upstream for r in rows) == {"a": chats(a), "b": chats(b)}


async def test_killed_upstream_is_ejected_and_comes_back_when_healthy(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    a = await start_engine(models=["tiny"])
    b = await start_engine(models=["tiny"])
    port_b = b.port
    revived: FakeEngine | None = None
    try:
        upstreams = pool(a, b)
        async with running_gateway(
            tmp_path, a.base_url, upstreams=upstreams, health=FAST_CHECKS
        ) as gw:
            statuses: list[int] = []
            quarter_done, killed = asyncio.Event(), asyncio.Event()

            async def worker() -> None:
                for i in range(20):
                    statuses.append((await chat(session, gw, stream=i % 2 == 0))[0])
                    if len(statuses) >= 20:
                        quarter_done.set()
                    await asyncio.sleep(0.01)

            async def killer() -> None:
                await quarter_done.wait()
                # B hangs before its headers, then dies with those requests in flight.
                b.fake = {"fault": "slow_headers", "delay": 5}
                await asyncio.sleep(0.1)
                await b.close()
                killed.set()

            await asyncio.gather(*(worker() for _ in range(4)), killer())
            assert killed.is_set()
            assert statuses == [200] * 80  # none failed: all failed over or went to A
            await wait_health(session, gw, {"a": True, "b": False})
            before = chats(a)
            for _ in range(10):
                assert (await chat(session, gw))[0] == 200
            assert chats(a) == before + 10  # B is out of rotation

            revived = await start_engine(models=["tiny"], port=port_b)
            await wait_health(session, gw, {"a": True, "b": True})
            for _ in range(20):
                assert (await chat(session, gw))[0] == 200
            assert chats(revived) >= 8, chats(revived)
            rows = await gw.usage(110)
        assert all(r.status == 200 for r in rows)
        assert {r.upstream for r in rows} == {"a", "b"}
    finally:
        await a.close()
        await b.close()
        if revived is not None:
            await revived.close()


async def test_engine_answering_503_fails_over_and_the_last_503_is_relayed(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with two_engines() as (a, b):
        a.fake = {"fault": "503"}  # e.g. llama-server still loading its model
        async with running_gateway(tmp_path, a.base_url, upstreams=pool(a, b)) as gw:
            for _ in range(6):
                assert (await chat(session, gw))[0] == 200
            assert chats(b) == 6 and chats(a) >= 1
            rows = await gw.usage(6)
            assert {r.upstream for r in rows} == {"b"}
            b.fake = {"fault": "503"}
            status, body = await chat(session, gw)
        assert status == 503
        assert body["error"]["message"] == "Loading model"  # the engine's own error, relayed


async def test_no_answer_within_first_byte_fails_over_and_ejects(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with two_engines() as (a, b):
        a.fake = {"fault": "stall_headers"}
        timeouts = {"connect": 2, "first_byte": 0.5, "idle": 30}
        checks = {"interval": 60}  # no check brings A back during the test
        async with running_gateway(
            tmp_path, a.base_url, upstreams=pool(a, b), timeouts=timeouts, health=checks
        ) as gw:
            for _ in range(4):
                assert (await chat(session, gw))[0] == 200
            assert chats(a) == 1  # tried once, timed out, ejected
            assert chats(b) == 4
            assert await readyz_upstreams(session, gw) == {"a": False, "b": True}


async def test_refused_connection_fails_over(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with two_engines() as (a, b):
        await a.close()
        checks = {"interval": 60}
        async with running_gateway(tmp_path, b.base_url, upstreams=pool(a, b), health=checks) as gw:
            # The start-up round already knows A is down: nothing is even tried there.
            assert await readyz_upstreams(session, gw) == {"a": False, "b": True}
            for _ in range(4):
                assert (await chat(session, gw))[0] == 200
            assert chats(b) == 4


async def test_nothing_fails_over_once_the_stream_started(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with two_engines() as (a, b):
        async with running_gateway(tmp_path, a.base_url, upstreams=pool(a, b)) as gw:
            body = chat_body(stream=True, fake={"fault": "cutoff", "after": 2})
            headers = bearer(gw.accounts.user_key)
            async with session.post(gw.url(CHAT), headers=headers, json=body) as r:
                assert r.status == 200
                events = parse_sse(await r.read())
            assert assert_error_shape(events[-1].json())["code"] == "upstream_cut_off"
            assert chats(a) + chats(b) == 1
            rows = await gw.usage(1)
        assert rows[0].upstream in ("a", "b")


async def test_all_upstreams_down_is_502(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    async with two_engines() as (a, b):
        await a.close()
        await b.close()
        async with running_gateway(tmp_path, a.base_url, upstreams=pool(a, b)) as gw:
            started = time.monotonic()
            status, body = await chat(session, gw)
            assert status == 502
            assert assert_error_shape(body)["code"] == "upstream_unavailable"
            assert time.monotonic() - started < 2.0
