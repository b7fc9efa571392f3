"""`workers: 2`: one `authproxy serve` supervising two worker processes on one port, on one
SQLite file or on PostgreSQL: the kernel gives connections to both, the quota is one and
exact, SIGTERM drains every worker, a killed worker is started again, a taken port is one
line."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine
from functional.helpers import CHAT, bearer, chat_body, gateway_config, write_config
from functional.served import serve_fails

from authproxy.proxy.request_body import estimate_prompt_tokens

from .gateways import Gateway, chat, finish_across_sigterm, gateways, usage_ids
from .procnet import children, listeners, owner_of_connection


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str | None:
    """The store the workers share: the SQLite file in data_dir, or a PostgreSQL database."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_database")
    return url


def _roles(**limits: int) -> dict[str, object]:
    return {"admin": {"models": ["*"]}, "user": {"models": ["*"], **limits}, "restricted": {}}


async def _worker_of_new_connection(gw: Gateway) -> int | None:
    """Open a connection, get an answer on it, and say which worker holds it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.serving.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        client_port = writer.get_extra_info("sockname")[1]
        return owner_of_connection(children(gw.proc.pid), gw.serving.port, client_port)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_two_workers_share_one_port_and_one_quota_exactly(
    tmp_path: Path,
    engine: FakeEngine,
    database: str | None,
    session: aiohttp.ClientSession,
) -> None:
    # None ends (handing back the rest of its reservation) before all were admitted.
    slow: dict[str, Any] = {"fake": {"fault": "slow_headers", "delay": 1.5}}
    body = chat_body(max_tokens=5, **slow)
    reservation = estimate_prompt_tokens(body) + 5
    async with gateways(
        tmp_path, engine.base_url, database=database, count=1, workers=2,
        roles=_roles(tokens_per_day=10 * reservation),
    ) as cluster:  # fmt: skip
        gw = cluster.gateways[0]
        workers = children(gw.proc.pid)
        assert len(workers) == 2
        owners = {await _worker_of_new_connection(gw) for _ in range(20)}
        assert owners == set(workers)  # the kernel spreads connections over both
        connector = aiohttp.TCPConnector(force_close=True)  # 50 connections of their own
        async with aiohttp.ClientSession(connector=connector) as fresh:
            results = await asyncio.gather(
                *(
                    chat(fresh, gw, cluster.accounts.user_key, max_tokens=5, **slow)
                    for _ in range(50)
                )
            )
        statuses = [status for status, _ in results]
        assert statuses.count(200) == 10, statuses
        assert {e["error"]["code"] for s, e in results if s == 429} == {"insufficient_quota"}
        rows = await cluster.usage(10)
        assert len(rows) == 10
        assert len([r for r in engine.requests if r.path == CHAT]) == 10


async def test_sigterm_drains_every_worker_and_loses_no_row(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with gateways(tmp_path, engine.base_url, database=None, count=1, workers=2) as cluster:
        gw = cluster.gateways[0]
        workers = set(children(gw.proc.pid))
        body = chat_body(stream=True, fake={"token_delay": 0.3})  # 8 tokens: about 2.5 s
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as fresh:
            streams: list[aiohttp.ClientResponse] = []
            owners: set[int | None] = set()
            try:
                while owners != workers and len(streams) < 30:  # a stream on each worker
                    r = await fresh.post(
                        gw.url(CHAT), json=body, headers=bearer(cluster.accounts.user_key)
                    )
                    streams.append(r)
                    assert r.connection is not None and r.connection.transport is not None
                    client_port = r.connection.transport.get_extra_info("sockname")[1]
                    owners.add(owner_of_connection(list(workers), gw.serving.port, client_port))
                assert owners == workers
            except BaseException:
                for r in streams:
                    r.close()
                raise
            await finish_across_sigterm(streams, gw.proc, exit_within=30)
        rows = await cluster.usage(len(streams))
        assert usage_ids(rows) == sorted(r.headers["X-Request-Id"] for r in streams)
        assert "shutting down" in gw.log


async def test_a_killed_worker_is_started_again(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with gateways(tmp_path, engine.base_url, database=None, count=1, workers=2) as cluster:
        gw = cluster.gateways[0]
        victim, survivor = children(gw.proc.pid)
        os.kill(victim, signal.SIGKILL)
        loop = asyncio.get_running_loop()
        # Connections the kernel queued on its socket until the socket closed are reset with
        # it (a crash, not a drain); once it is closed, new ones go to the other worker.
        for _ in range(1000):
            if listeners(gw.serving.port) == 1:
                break
            await asyncio.sleep(0.01)
        deadline = loop.time() + 30
        served = 0
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as fresh:
            while "worker" not in gw.log or "is back" not in gw.log:
                assert loop.time() < deadline, gw.log
                # Meanwhile the other worker takes every new connection.
                assert (await chat(fresh, gw, cluster.accounts.user_key, max_tokens=1))[0] == 200
                served += 1
                await asyncio.sleep(0.05)
        assert served > 0
        assert f"(pid {victim}) exited with status -9; starting it again in 0.5s" in gw.log
        now_running = children(gw.proc.pid)
        assert survivor in now_running and victim not in now_running and len(now_running) == 2
        owners = {await _worker_of_new_connection(gw) for _ in range(20)}
        assert owners == set(now_running)


async def test_workers_on_a_taken_port_say_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        raw = gateway_config(tmp_path / "data", "http://127.0.0.1:9", workers=2)
        raw["listen"] = {"host": "127.0.0.1", "port": port}
        failed = await serve_fails(write_config(tmp_path / "authproxy.yaml", raw))
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"authproxy: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
