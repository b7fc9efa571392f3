"""PostgreSQL stopped and started again under two gateways (a cluster of this module's own):
keys keep working from memory, usage rows wait in memory and are all written once it is back,
and quotas fail open with each gateway's own counters (README: "Several gateways")."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from fakes.engine import FakeEngine
from functional.helpers import MODELS
from pg.cluster import PostgresCluster
from support.factories import usage_row

from authproxy.clock import now
from authproxy.limits.quota import Windows
from authproxy.proxy.accounting import UsageWriter
from authproxy.store import open_store

from .gateways import Cluster, Gateway, ask, gateways, metrics, status_of, usage_ids

FOREVER = 10**9
UNKNOWN_KEY = "sk-" + "u" * 43


@pytest.fixture(scope="module")
def cluster_of_our_own() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


def _roles(**limits: int) -> dict[str, object]:
    return {"admin": {"models": ["*"]}, "user": {"models": ["*"], **limits}, "restricted": {}}


async def _until(check: Callable[[], Awaitable[tuple[bool, object]]], within: float) -> None:
    """Until ``check()`` says yes; failing with what it saw last."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        ok, seen = await check()
        if ok:
            return
        assert loop.time() < deadline, f"not within {within}s: {seen}"
        await asyncio.sleep(0.1)


async def _charged(cluster: Cluster, user_id: int) -> tuple[int, int]:
    """What the shared quota counts for the user today and this month."""
    day, month = Windows(timezone="UTC").at(now())
    store = await open_store(cluster.where)
    try:
        return await store.quota_used(user_id, day=day, month=month)
    finally:
        await store.close()


async def test_postgresql_restarted_under_load_loses_no_usage_row(
    tmp_path: Path,
    engine: FakeEngine,
    cluster_of_our_own: PostgresCluster,
    session: aiohttp.ClientSession,
) -> None:
    database = cluster_of_our_own.create_database()
    roles = _roles(tokens_per_day=FOREVER, requests_per_minute=FOREVER, max_concurrent=100)
    async with gateways(tmp_path, engine.base_url, database=database, roles=roles) as cluster:
        key = cluster.accounts.user_key
        answers = []
        stop = asyncio.Event()

        async def load(gw: Gateway, stream: bool) -> None:
            while not stop.is_set():
                answers.append(await ask(session, gw, key, max_tokens=3, stream=stream))
                await asyncio.sleep(0.02)

        streams = itertools.cycle((True, False))
        tasks = [
            asyncio.create_task(load(gw, next(streams))) for gw in cluster.gateways for _ in "ab"
        ]
        try:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(cluster_of_our_own.pause)
            down = len(answers)

            # Away: requests are still served (keys from memory), their rows wait in memory.
            async def queued() -> tuple[bool, object]:
                seen = [await metrics(session, gw) for gw in cluster.gateways]
                ok = all(
                    m["authproxy_database_up"] == 0 and m["authproxy_usage_queue_rows"] > 0
                    for m in seen
                )
                return ok, seen

            await _until(queued, 10.0)
            await asyncio.sleep(1.0)
            assert len(answers) > down
            await asyncio.to_thread(cluster_of_our_own.resume)
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

        assert {a.status for a in answers} == {200}
        rows = await cluster.usage(len(answers), within=30)
        assert usage_ids(rows) == sorted(a.request_id for a in answers)  # each once

        async def drained() -> tuple[bool, object]:
            seen = [await metrics(session, gw) for gw in cluster.gateways]
            ok = all(
                m["authproxy_database_up"] == 1
                and m["authproxy_usage_queue_rows"] == 0
                and m["authproxy_quota_settles_queued"] == 0
                for m in seen
            )
            return ok, seen

        await _until(drained, 10.0)
        for gw in cluster.gateways:
            seen = await metrics(session, gw)
            assert seen["authproxy_usage_rows_dropped_total"] == 0
            assert seen["authproxy_quota_decided_alone_total"] > 0
        # The shared quota counted every request, those decided alone included.
        total = sum(r.prompt_tokens + r.completion_tokens for r in rows)
        assert await _charged(cluster, cluster.accounts.user_id) == (total, total)


async def test_quotas_fail_open_with_each_gateways_own_counters(
    tmp_path: Path,
    engine: FakeEngine,
    cluster_of_our_own: PostgresCluster,
    session: aiohttp.ClientSession,
) -> None:
    database = cluster_of_our_own.create_database()
    async with gateways(
        tmp_path, engine.base_url, database=database, roles=_roles(requests_per_minute=3)
    ) as cluster:
        first, second = cluster.gateways
        key = cluster.accounts.user_key
        assert (await ask(session, first, key, max_tokens=1)).status == 200
        await asyncio.to_thread(cluster_of_our_own.pause)
        try:
            # Each gateway enforces the limit alone, from what it saw: the first has had one
            # request this minute, the second none.
            first_says = [(await ask(session, first, key, max_tokens=1)).status for _ in range(3)]
            second_says = [(await ask(session, second, key, max_tokens=1)).status for _ in range(4)]
            assert first_says == [200, 200, 429]
            assert second_says == [200, 200, 200, 429]
            # Still live, but "not ready": why a load balancer should check /healthz.
            assert await status_of(session, second.url("/healthz"), key) == 200
            assert await status_of(session, second.url("/readyz"), key) == 503
            # A key nobody knows is refused at once, as always: not a 500, not a wait.
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await status_of(session, second.url(MODELS), UNKNOWN_KEY) == 401
            assert loop.time() - started < 1.5
        finally:
            await asyncio.to_thread(cluster_of_our_own.resume)

        # Back: the database counts all six, and decides for both again.
        async def counted() -> tuple[bool, object]:
            rows = await cluster.usage(0)
            return len(rows) == 6, rows

        await _until(counted, 15.0)
        for gw in (first, second):
            answer = await ask(session, gw, key, max_tokens=1)
            assert answer.status == 429, answer


async def test_the_usage_queue_is_bounded_and_counts_what_it_drops(
    cluster_of_our_own: PostgresCluster,
) -> None:
    store = await open_store(cluster_of_our_own.create_database())
    alice = await store.create_user(name="alice", role="user", email=None)
    writer = UsageWriter(store=store, flush_interval=0.05, max_queued=3, drain_within=10)
    try:
        async with writer.running():
            await asyncio.to_thread(cluster_of_our_own.pause)
            try:
                for i in range(5):
                    writer.record(usage_row(ts=float(i), request_id=f"r{i}", user_id=alice.id))
                await asyncio.sleep(0.3)  # the writer tries, and fails, meanwhile
                assert (writer.pending, writer.dropped) == (3, 2)
            finally:
                await asyncio.to_thread(cluster_of_our_own.resume)
        # Leaving drained the queue into the database once it was back.
        assert [r.request_id for r in await store.usage_rows()] == ["r0", "r1", "r2"]
    finally:
        await store.close()
