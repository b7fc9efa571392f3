"""Two gateway processes on one PostgreSQL, configured as on two hosts (README: "Several
gateways"): keys, revocations and quotas are one across them, and a gateway stopped with
SIGTERM mid-stream loses no usage row."""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from pathlib import Path
from typing import Any

import aiohttp
from fakes.engine import FakeEngine
from functional.helpers import CHAT, MODELS, bearer, chat_body, poll_status, run_cli

from authproxy.cli.commands import admin_service
from authproxy.login.passwords import hash_password
from authproxy.proxy.request_body import estimate_prompt_tokens

from .gateways import (
    chat,
    create_key_on_account_page,
    finish_across_sigterm,
    gateways,
    status_of,
    usage_ids,
)

WITHIN = 1.0  # a change reaches every gateway within a second
PASSWORD = "correct horse battery staple"


def _user_role(**limits: int | float) -> dict[str, object]:
    return {
        "admin": {"models": ["*"]},
        "user": {"models": ["*"], **limits},
        "restricted": {"models": ["tiny"]},
    }


async def test_a_key_made_through_one_gateway_works_on_the_other(
    tmp_path: Path, engine: FakeEngine, pg_database: str, session: aiohttp.ClientSession
) -> None:
    async with gateways(tmp_path, engine.base_url, database=pg_database) as cluster:
        first, second = cluster.gateways
        async with admin_service(cluster.config) as admin:
            await admin.set_password("alice", hash_password(PASSWORD))
        key = await create_key_on_account_page(first, "alice", PASSWORD)
        took, _ = await poll_status(
            lambda: status_of(session, second.url(MODELS), key), 200, WITHIN
        )
        assert took <= WITHIN
        assert (await chat(session, second, key))[0] == 200
        assert (await chat(session, first, key))[0] == 200


async def test_a_revocation_and_a_disabled_user_reach_both_gateways_within_a_second(
    tmp_path: Path, engine: FakeEngine, pg_database: str, session: aiohttp.ClientSession
) -> None:
    async with gateways(tmp_path, engine.base_url, database=pg_database) as cluster:
        keys = (cluster.accounts.user_key, cluster.accounts.restricted_key)
        urls = [gw.url(MODELS) for gw in cluster.gateways]
        for url in urls:
            for key in keys:
                assert await status_of(session, url, key) == 200
        config = str(cluster.gateways[0].config_path)
        for change in (
            ("keys", "revoke", str(cluster.accounts.user_key_id)),
            ("users", "disable", "rita"),
        ):
            done = await run_cli("--config", config, *change)
            assert done.returncode == 0, done.stderr
        took = await asyncio.gather(
            *(poll_status(functools.partial(status_of, session, url, key), 401, WITHIN)
              for url in urls for key in keys)
        )  # fmt: skip
        assert all(seconds <= WITHIN for seconds, _ in took), took


async def test_forty_requests_across_both_fit_the_quota_exactly(
    tmp_path: Path, engine: FakeEngine, pg_database: str, session: aiohttp.ClientSession
) -> None:
    """Room for ten requests and a bit: ten get their full limit, the eleventh what is left
    (clamped), the other 29 are refused, whichever gateway they reached; the tokens charged
    end within the quota, as with one gateway."""
    # None ends (handing back the rest of its reservation) before all were admitted.
    slow: dict[str, Any] = {"fake": {"fault": "slow_headers", "delay": 1.5}}
    body = chat_body(max_tokens=5, **slow)
    prompt = estimate_prompt_tokens(body)
    room = 10 * (prompt + 5) + prompt + 2
    async with gateways(
        tmp_path, engine.base_url, database=pg_database, roles=_user_role(tokens_per_day=room)
    ) as cluster:
        key = cluster.accounts.user_key
        replicas = itertools.cycle(cluster.gateways)
        results = await asyncio.gather(
            *(chat(session, next(replicas), key, max_tokens=5, **slow) for _ in range(40))
        )
        statuses = [status for status, _ in results]
        assert statuses.count(200) == 11, statuses
        assert {e["error"]["code"] for s, e in results if s == 429} == {"insufficient_quota"}
        sent = sorted(r.body["max_tokens"] for r in engine.requests if r.path == CHAT)
        assert sent == [2] + [5] * 10
        rows = await cluster.usage(11)
        charged = sum(r.prompt_tokens + r.completion_tokens for r in rows)
        assert len(rows) == 11 and charged <= room


async def test_sigterm_on_one_gateway_during_streams_loses_no_usage_row(
    tmp_path: Path, engine: FakeEngine, pg_database: str, session: aiohttp.ClientSession
) -> None:
    async with gateways(tmp_path, engine.base_url, database=pg_database) as cluster:
        first, second = cluster.gateways
        headers = bearer(cluster.accounts.user_key)
        body = chat_body(stream=True, fake={"token_delay": 0.25})  # 8 tokens: about 2 s
        streams = [
            await session.post(gw.url(CHAT), json=body, headers=headers)
            for gw in (first, second, first, second, first, second)
        ]
        await finish_across_sigterm(streams, first.proc, exit_within=20)
        ids = sorted(r.headers["X-Request-Id"] for r in streams)
        rows = await cluster.usage(6)
        assert usage_ids(rows) == ids
        assert {(r.status, r.completion_tokens) for r in rows} == {(200, 8)}
        assert (await chat(session, second, cluster.accounts.user_key))[0] == 200


async def test_a_crashed_gateways_concurrency_slot_lapses_with_its_lease(
    tmp_path: Path, engine: FakeEngine, pg_database: str, session: aiohttp.ClientSession
) -> None:
    lease = 1.5
    async with gateways(
        tmp_path, engine.base_url, database=pg_database,
        roles=_user_role(max_concurrent=1), quotas={"lease_seconds": lease},
    ) as cluster:  # fmt: skip
        first, second = cluster.gateways
        key = cluster.accounts.user_key
        long = chat_body(stream=True, max_tokens=60, ignore_eos=True, fake={"token_delay": 0.25})
        holding = await session.post(first.url(CHAT), json=long, headers=bearer(key))
        try:
            await asyncio.wait_for(holding.content.readuntil(b"\n\n"), 10)
            status, error = await chat(session, second, key, max_tokens=1)
            assert (status, error["error"]["code"]) == (429, "rate_limit_exceeded")
            await asyncio.sleep(lease)  # renewed meanwhile: still held
            assert (await chat(session, second, key, max_tokens=1))[0] == 429
            first.proc.kill()  # no drain, no settle: only the lease can free the slot
            killed = time.monotonic()
            await first.proc.wait()
        finally:
            holding.close()

        async def fetch() -> int:
            return (await chat(session, second, key, max_tokens=1))[0]

        await poll_status(fetch, 200, lease + 1.0)
        assert time.monotonic() - killed <= lease + 1.0
