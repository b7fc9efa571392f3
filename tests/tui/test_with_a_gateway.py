"""The TUI next to a running gateway on the same store: a key revoked in the TUI is refused
within 1 s; the dashboard shows what the gateway's /metrics say (quota rejections, who waits
in its fair queue)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from fakes.engine import running_engine
from functional.helpers import CHAT, MODELS, bearer, chat_body, running_gateway
from functional.queueing import equals, queue_upstream, stream, tagged_chat, until, waiting

from admin_tui import create_app
from authproxy.cli.commands import admin_service
from authproxy.config.schema import Listen

from .conftest import settle
from .helpers import select_row, table_rows, text_of


async def test_revoked_in_the_tui_refused_by_the_gateway_within_a_second(
    tmp_path: Path,
) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        running_engine(models=["tiny"]) as engine,
        running_gateway(tmp_path, engine.base_url) as gateway,
        aiohttp.ClientSession(timeout=timeout) as session,
        gateway.admin() as service,
    ):
        key, key_id = gateway.accounts.user_key, gateway.accounts.user_key_id

        async def status() -> int:
            async with session.get(gateway.url(MODELS), headers=bearer(key)) as resp:
                return resp.status

        assert await status() == 200
        app = create_app(service, start="keys")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            select_row(app, str(key_id))
            await pilot.press("x")
            await settle(pilot)
            loop = asyncio.get_running_loop()
            confirmed = loop.time()
            await pilot.press("y")  # the admin confirms: from here, one second
            seen = []
            while (code := await status()) != 401:
                seen.append(code)
                assert loop.time() - confirmed < 1.0, f"still {seen[-1]} after 1 s: {seen}"
                await asyncio.sleep(0.02)
            elapsed = loop.time() - confirmed
            await settle(pilot)
            row = next(r for r in table_rows(app) if r[0] == str(key_id))
            assert row[6] == "revoked"
        assert elapsed < 1.0, elapsed
        print(f"refused {elapsed:.3f}s after confirming; statuses before: {seen}")
        # Other keys are untouched.
        async with session.get(
            gateway.url(MODELS), headers=bearer(gateway.accounts.admin_key)
        ) as r:
            assert r.status == 200


async def test_dashboard_shows_the_gateways_quota_rejections(tmp_path: Path) -> None:
    roles = {
        "admin": {"models": ["*"]},
        "user": {"models": ["*"], "requests_per_minute": 1},
        "restricted": {"models": ["tiny"]},
    }
    async with (
        running_engine(models=["tiny"]) as engine,
        running_gateway(tmp_path, engine.base_url, roles=roles) as gateway,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        for _ in range(2):
            headers = bearer(gateway.accounts.user_key)
            async with session.post(gateway.url(CHAT), headers=headers, json=chat_body()) as r:
                await r.read()
        # The config says port 0 (any free port); the TUI must look where the gateway listens.
        listen = Listen(host="127.0.0.1", port=gateway.port)
        async with admin_service(gateway.config.model_copy(update={"listen": listen})) as service:
            app = create_app(service)
            async with app.run_test(size=(80, 24)) as pilot:
                await settle(pilot)
                line = text_of(app, "#gateway")
    assert line == "Gateway    ● 0 open streams · 1 quota rejection since start (rpm 1)"


async def test_dashboard_shows_who_waits_in_the_gateways_queue(tmp_path: Path) -> None:
    async with running_engine(models=["tiny"]) as engine:
        upstreams = [queue_upstream(engine.base_url, capacity=1)]
        async with (
            running_gateway(tmp_path, engine.base_url, upstreams=upstreams) as gateway,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        ):
            keys = gateway.accounts
            holder = asyncio.create_task(
                stream(session, gateway, keys.user_key, tagged_chat("hold", tokens=60))
            )
            await until(lambda: engine.open_requests == 1)
            waiters = [
                asyncio.create_task(stream(session, gateway, key, tagged_chat("wait")))
                for key in (keys.restricted_key, keys.restricted_key, keys.admin_key)
            ]
            await until(lambda: equals(waiting(session, gateway), 3))
            listen = Listen(host="127.0.0.1", port=gateway.port)
            config = gateway.config.model_copy(update={"listen": listen})
            async with admin_service(config) as service:
                app = create_app(service)
                async with app.run_test(size=(80, 24)) as pilot:
                    await settle(pilot)
                    line = text_of(app, "#queue")
            holder.cancel()  # the client leaves: its slot passes on and the rest are served
            assert [(await w).status for w in waiters] == [200, 200, 200]
    assert line == "Queue      1/1 slots busy · waiting: rita 2, root 1"
