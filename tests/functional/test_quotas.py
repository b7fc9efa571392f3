"""Quotas: token reservations under concurrency, RPM and concurrency limits, clamping, changes
made by another process, and counters rebuilt after a restart — with each quota book: counted
in the gateway's memory (one process on SQLite), and in the database (PostgreSQL, and several
workers on one SQLite file), which must give the same exact answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fakes.engine import FakeEngine
from prometheus_client.parser import text_string_to_metric_families

from authproxy import appkeys as K
from authproxy.app import build_app
from authproxy.proxy.request_body import estimate_prompt_tokens

from .helpers import CHAT, Gateway, bearer, chat_body, poll_status, run_cli, running_gateway

MAX_TOKENS = 5


@pytest.fixture(params=["memory", "postgresql", "sqlite-workers"])
def book(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The config that picks a quota book: in memory, in PostgreSQL, in the SQLite file."""
    if request.param == "postgresql":
        return {"database": request.getfixturevalue("pg_database")}
    if request.param == "sqlite-workers":
        return {"workers": 2}  # this process stands for one of two workers
    return {}


def _roles(**user: Any) -> dict[str, Any]:
    return {"admin": {"models": ["*"]}, "user": {"models": ["*"], **user}, "restricted": {}}


async def _post(
    session: aiohttp.ClientSession, gw: Gateway, body: dict[str, Any]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with session.post(gw.url(CHAT), json=body, headers=bearer(gw.accounts.user_key)) as r:
        payload = await r.json() if r.content_type == "application/json" else {}
        return r.status, payload, dict(r.headers)


async def test_fifty_simultaneous_requests_with_room_for_ten(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession, book: dict[str, Any]
) -> None:
    body = chat_body(max_tokens=MAX_TOKENS)
    reservation = estimate_prompt_tokens(body) + MAX_TOKENS
    # Each admitted request is answered after 2 s: a finished one gives back what it reserved
    # and did not use, so one that finished before the last of the fifty was decided would let
    # an 11th in. (token_delay paces streams only; these requests are not streamed.)
    engine.fake = {"fault": "slow_headers", "delay": 2}
    async with running_gateway(
        tmp_path, engine.base_url, roles=_roles(tokens_per_day=10 * reservation), **book
    ) as gw:
        results = await asyncio.gather(*(_post(session, gw, body) for _ in range(50)))
        statuses = [status for status, _, _ in results]
        # The documented bound: reservations are taken atomically, so exactly the ten that fit.
        assert statuses.count(200) == 10, statuses
        refused = [(p, h) for s, p, h in results if s == 429]
        assert len(refused) == 40
        for payload, headers in refused:
            assert payload["error"]["code"] == "insufficient_quota"
            assert 1 <= int(headers["Retry-After"]) <= 86400
        rows = await gw.usage(10)
        assert len(rows) == 10  # refused requests never reached the engine and write no row
        assert len([r for r in engine.requests if r.path == CHAT]) == 10
        charged = sum(r.prompt_tokens + r.completion_tokens for r in rows)
        assert await gw.app[K.QUOTAS].used(gw.accounts.user_id) == (charged, charged)
    # A restart rebuilds the counters from the usage table.
    app = build_app(gw.config)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert await app[K.QUOTAS].used(gw.accounts.user_id) == (charged, charged)
    finally:
        await runner.cleanup()


async def test_requests_per_minute_with_an_honest_retry_after(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession, book: dict[str, Any]
) -> None:
    async with running_gateway(
        tmp_path, engine.base_url, roles=_roles(requests_per_minute=3), **book
    ) as gw:
        first = time.monotonic()
        for _ in range(3):
            assert (await _post(session, gw, chat_body(max_tokens=1)))[0] == 200
        status, payload, headers = await _post(session, gw, chat_body(max_tokens=1))
        assert status == 429 and payload["error"]["code"] == "rate_limit_exceeded"
        retry = int(headers["Retry-After"])
        # The window frees up 60 s after the first request: Retry-After says no less, no more.
        assert 60 - (time.monotonic() - first) - 1 <= retry <= 60
        assert len([r for r in engine.requests if r.path == CHAT]) == 3


async def test_concurrent_streams_are_limited(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession, book: dict[str, Any]
) -> None:
    async with running_gateway(
        tmp_path, engine.base_url, roles=_roles(max_concurrent=2), **book
    ) as gw:
        engine.token_delay = 0.3
        body = chat_body(stream=True, max_tokens=4)
        headers = bearer(gw.accounts.user_key)
        open_streams = [await session.post(gw.url(CHAT), json=body, headers=headers) for _ in "ab"]
        try:
            assert [r.status for r in open_streams] == [200, 200]
            status, payload, hdrs = await _post(session, gw, chat_body(max_tokens=1))
            assert status == 429 and payload["error"]["code"] == "rate_limit_exceeded"
            assert hdrs["Retry-After"] == "1"
            await open_streams[0].read()  # one finishes: room for another
            assert (await _post(session, gw, chat_body(max_tokens=1)))[0] == 200
        finally:
            for r in open_streams:
                r.close()


async def test_max_tokens_is_clamped_to_what_remains(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession, book: dict[str, Any]
) -> None:
    body = chat_body(max_tokens=500)
    prompt = estimate_prompt_tokens(body)
    async with running_gateway(
        tmp_path, engine.base_url, roles=_roles(tokens_per_day=prompt + 7), **book
    ) as gw:
        assert (await _post(session, gw, body))[0] == 200
        (sent,) = [r.body for r in engine.requests if r.path == CHAT]
        assert sent["max_tokens"] == 7


async def test_quota_set_by_the_cli_applies_within_a_second(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession, book: dict[str, Any]
) -> None:
    async with running_gateway(tmp_path, engine.base_url, **book) as gw:
        assert (await _post(session, gw, chat_body(max_tokens=3)))[0] == 200
        await gw.usage(1)
        done = await run_cli(
            "--config", str(gw.config_path), "users", "quota", "alice", "--tokens-per-day", "1"
        )
        assert done.returncode == 0, done.stderr

        async def fetch() -> int:
            return (await _post(session, gw, chat_body(max_tokens=1)))[0]

        elapsed, _ = await poll_status(fetch, 429, within=1.0)
        assert elapsed <= 1.0
        done = await run_cli(
            "--config", str(gw.config_path), "users", "quota", "alice", "--tokens-per-day", "role"
        )
        assert done.returncode == 0, done.stderr
        await poll_status(fetch, 200, within=1.0)


async def test_repeated_auth_failures_block_the_address(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    throttle = {"max_failures": 3, "window": 60, "block": 1.5}
    async with running_gateway(tmp_path, engine.base_url, auth_throttle=throttle) as gw:
        wrong = "sk-" + "W" * 43
        for _ in range(3):
            async with session.get(gw.url("/v1/models"), headers=bearer(wrong)) as r:
                assert r.status == 401
        # Blocked now, even with a valid key.
        async with session.get(gw.url("/v1/models"), headers=bearer(gw.accounts.user_key)) as r:
            assert r.status == 429
            assert (await r.json())["error"]["code"] == "too_many_auth_failures"
            assert 1 <= int(r.headers["Retry-After"]) <= 2
        async with gw.admin() as admin:
            for _ in range(100):
                entries = await admin.audit_log(since=0)
                if any(e.action == "auth.blocked" for e in entries):
                    break
                await asyncio.sleep(0.05)
        actions = sorted(e.action for e in entries if e.action.startswith("auth."))
        assert actions == ["auth.blocked", "auth.failed", "auth.failed"]
        details = " ".join(str(e.detail) for e in entries)
        assert "sk-WWWWWW" in details and wrong not in details  # the prefix only, never the key
        assert all(e.source == "127.0.0.1" for e in entries if e.action.startswith("auth."))
        families = {
            s.labels.get("reason"): s.value
            for f in text_string_to_metric_families(gw.app[K.METRICS].render()[0].decode())
            for s in f.samples
            if s.name == "authproxy_auth_failures_total"
        }
        assert families == {"invalid_api_key": 3, "too_many_auth_failures": 1}
        await asyncio.sleep(1.6)
        async with session.get(gw.url("/v1/models"), headers=bearer(gw.accounts.user_key)) as r:
            assert r.status == 200


async def test_a_limit_of_zero_refuses_every_request(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession, book: dict[str, Any]
) -> None:
    """`users quota NAME --rpm 0` (or `--concurrent 0`): refused with an honest wait, not a 500."""
    async with running_gateway(tmp_path, engine.base_url, **book) as gw:
        async with gw.admin() as admin:
            await admin.set_quota("alice", requests_per_minute=0)
        await gw.app[K.WATCH].check()
        status, payload, headers = await _post(session, gw, chat_body(max_tokens=1))
        assert (status, payload["error"]["code"]) == (429, "rate_limit_exceeded")
        assert headers["Retry-After"] == "60"
        async with gw.admin() as admin:
            await admin.set_quota("alice", requests_per_minute=None, max_concurrent=0)
        await gw.app[K.WATCH].check()
        status, payload, headers = await _post(session, gw, chat_body(max_tokens=1))
        assert (status, headers["Retry-After"]) == (429, "1")
        assert "at most 0 concurrent requests" in payload["error"]["message"]
        assert not [r for r in engine.requests if r.path == CHAT]


async def test_what_a_user_without_limits_used_counts_once_a_limit_is_set(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession, book: dict[str, Any]
) -> None:
    """No limits: admitted without a decision, but the tokens are still charged, so a daily
    limit set afterwards counts them (one token short of the next reservation: refused)."""
    async with running_gateway(tmp_path, engine.base_url, roles=_roles(), **book) as gw:
        assert (await _post(session, gw, chat_body(max_tokens=3)))[0] == 200
        (row,) = await gw.usage(1)
        used = row.prompt_tokens + row.completion_tokens
        assert used > 0
        body = chat_body(max_tokens=1)
        next_reservation = estimate_prompt_tokens(body) + 1
        async with gw.admin() as admin:
            await admin.set_quota("alice", tokens_per_day=used + next_reservation - 1)
        await gw.app[K.WATCH].check()
        status, payload, _ = await _post(session, gw, body)
        assert (status, payload["error"]["code"]) == (429, "insufficient_quota"), payload
        assert f"({next_reservation - 1} tokens left)" in payload["error"]["message"]
        async with gw.admin() as admin:
            await admin.set_quota("alice", tokens_per_day=used + next_reservation)
        await gw.app[K.WATCH].check()
        assert (await _post(session, gw, body))[0] == 200
