"""The fair queue and the upstreams: a request waiting for an upstream that goes down (its
health checks fail, or a request to it fails) moves to another upstream serving the model or
fails fast; `max_inflight: auto` follows the engine's announced slots; waiting requests count
against `max_concurrent`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
from fakes.engine import FakeEngine, running_engine

from .helpers import CHAT, Gateway, bearer, running_gateway
from .queueing import equals, metric, queue_upstream, stream, tagged_chat, tags, until, waiting
from .test_upstream_pool import FAST_CHECKS, two_engines
from .wire import assert_error_shape


async def test_a_waiter_moves_to_another_upstream_when_health_checks_take_its_own_out(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with two_engines() as (a, b):
        upstreams = [queue_upstream(a.base_url, name="a"), queue_upstream(b.base_url, name="b")]
        engines = {"a": a, "b": b}
        async with running_gateway(
            tmp_path, a.base_url, upstreams=upstreams, health=FAST_CHECKS
        ) as gw:
            key = gw.accounts.user_key
            holders = [
                asyncio.create_task(stream(session, gw, key, tagged_chat(f"hold{i}", tokens=30)))
                for i in range(2)
            ]
            await until(lambda: a.open_requests == b.open_requests == 1)
            waiter = asyncio.create_task(stream(session, gw, key, tagged_chat("waiter")))
            down = await _where_waiting(session, gw, "a", "b")
            other = "b" if down == "a" else "a"
            engines[down].healthy = False  # its next health check fails: out of rotation
            moved = await waiter
            drained = await metric(
                session, gw, "authproxy_queue_refusals_total", upstream=down, reason="drained"
            )
            held = [(await h).status for h in holders]
    assert held == [200, 200]  # those in flight kept their slots
    assert moved.status == 200 and b"[DONE]" in moved.body
    assert "waiter" in tags(engines[other]) and "waiter" not in tags(engines[down])
    assert drained == 1


async def test_a_waiter_fails_fast_when_its_only_upstream_goes_down(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    upstreams = [queue_upstream(engine.base_url)]
    async with running_gateway(
        tmp_path, engine.base_url, upstreams=upstreams, health=FAST_CHECKS, queue={"timeout": 60}
    ) as gw:
        holder = asyncio.create_task(
            stream(session, gw, gw.accounts.user_key, tagged_chat("hold", tokens=30))
        )
        await until(lambda: engine.open_requests == 1)
        waiter = asyncio.create_task(
            stream(session, gw, gw.accounts.restricted_key, tagged_chat("waiter"))
        )
        await until(lambda: waiting(session, gw, "local"))
        engine.healthy = False
        failed = await waiter
        assert (await holder).status == 200
    assert failed.status == 503 and failed.took < 5
    err = assert_error_shape(json.loads(failed.body))
    assert (err["type"], err["code"]) == ("upstream_error", "upstream_unavailable")
    assert "waiter" not in tags(engine)


async def test_waiters_move_on_when_a_request_to_their_upstream_gets_no_answer(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """`a` takes requests and never answers: the one it holds times out (first_byte), which
    takes `a` out at once; the request waiting for `a` does not wait for a check to notice."""
    async with two_engines() as (a, b):
        a.fake = {"fault": "stall_headers"}
        b.token_delay = 0.1  # b stays busy for a while with what it gets
        upstreams = [queue_upstream(a.base_url, name="a"), queue_upstream(b.base_url, name="b")]
        timeouts = {"connect": 2, "first_byte": 3.0, "idle": 30}
        slow_checks = {**FAST_CHECKS, "interval": 60}  # only the failed request can notice
        async with running_gateway(
            tmp_path, a.base_url, upstreams=upstreams, timeouts=timeouts, health=slow_checks
        ) as gw:

            async def chat(key: str) -> int:
                body: dict[str, Any] = {
                    "model": "tiny",
                    "messages": [{"role": "user", "content": "hello"}],
                    "stream": True,
                }
                async with session.post(gw.url(CHAT), headers=bearer(key), json=body) as r:
                    await r.read()
                    return r.status

            keys = [gw.accounts.user_key, gw.accounts.restricted_key, gw.accounts.admin_key]
            first = asyncio.create_task(chat(keys[0]))  # to a (turns): stalls
            await until(lambda: a.open_requests == 1)
            second = asyncio.create_task(chat(keys[1]))  # to b, the less loaded
            await until(lambda: b.open_requests == 1)
            third = asyncio.create_task(chat(keys[2]))  # a's turn again: waits for a's slot
            await until(lambda: waiting(session, gw, "a"))
            statuses = list(await asyncio.gather(first, second, third))
            drained = await metric(
                session, gw, "authproxy_queue_refusals_total", upstream="a", reason="drained"
            )
    assert statuses == [200, 200, 200]
    assert sum(1 for q in a.requests if q.path == CHAT) == 1  # only the one that stalled
    assert drained == 1


async def test_max_inflight_auto_follows_the_slots_the_engine_announces(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    engine.total_slots = 3
    upstreams = [queue_upstream(engine.base_url, capacity="auto")]
    async with running_gateway(
        tmp_path, engine.base_url, upstreams=upstreams, health=FAST_CHECKS
    ) as gw:

        async def capacity() -> float | None:
            return await metric(session, gw, "authproxy_queue_capacity", upstream="local")

        assert await capacity() == 3  # read before the first request
        engine.total_slots = 1  # the engine restarted with -np 1
        await until(lambda: equals(capacity(), 1))
        holder = asyncio.create_task(
            stream(session, gw, gw.accounts.user_key, tagged_chat("hold", tokens=20))
        )
        await until(lambda: engine.open_requests == 1)
        second = asyncio.create_task(
            stream(session, gw, gw.accounts.restricted_key, tagged_chat("second"))
        )
        await until(lambda: waiting(session, gw, "local"))  # one slot now: it waits
        assert (await holder).status == (await second).status == 200


async def test_auto_without_readable_slots_queues_nothing(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """An engine that does not announce its slots to us (here: /props behind its own key,
    which the config does not give): no queue, requests go straight on, as before."""
    async with running_engine(api_key="engine-secret") as engine:
        upstreams = [{**queue_upstream(engine.base_url, capacity="auto"), "models": ["tiny"]}]
        async with running_gateway(tmp_path, engine.base_url, upstreams=upstreams) as gw:
            capacity = await metric(session, gw, "authproxy_queue_capacity", upstream="local")
            up = await metric(session, gw, "authproxy_upstream_up", upstream="local")
    assert capacity is None
    assert up == 1


async def test_waiting_requests_count_against_max_concurrent(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    roles = {
        "admin": {"models": ["*"]},
        "user": {"models": ["*"], "max_concurrent": 2},
        "restricted": {"models": ["tiny"]},
    }
    upstreams = [queue_upstream(engine.base_url)]
    async with running_gateway(tmp_path, engine.base_url, upstreams=upstreams, roles=roles) as gw:
        key = gw.accounts.user_key
        holder = asyncio.create_task(stream(session, gw, key, tagged_chat("hold", tokens=20)))
        await until(lambda: engine.open_requests == 1)
        waiter = asyncio.create_task(stream(session, gw, key, tagged_chat("wait")))
        await until(lambda: waiting(session, gw, "local"))
        third = await stream(session, gw, key, tagged_chat("third"))
        assert (await holder).status == (await waiter).status == 200
    assert third.status == 429
    err = assert_error_shape(json.loads(third.body))
    assert err["code"] == "rate_limit_exceeded" and "concurrent" in err["message"]


async def _where_waiting(session: aiohttp.ClientSession, gw: Gateway, *upstreams: str) -> str:
    async with asyncio.timeout(5):
        while True:
            for name in upstreams:
                if await waiting(session, gw, name):
                    return name
            await asyncio.sleep(0.02)
