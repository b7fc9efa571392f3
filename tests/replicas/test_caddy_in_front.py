"""The project's Caddyfile in front of two gateways on one PostgreSQL (README: "Several
gateways"): `CADDY_UPSTREAM` names both, requests reach both, and when one gateway dies the
requests that would have gone to it are served by the other."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
from e2e.caddy import Caddy, find_caddy
from fakes.engine import FakeEngine
from functional.helpers import MODELS, bearer

from .gateways import Gateway, gateways


def _served(gw: Gateway) -> int:
    """Requests for /v1/models in the gateway's access log."""
    count = 0
    for line in gw.serving.log:
        if line.startswith("{"):
            count += json.loads(line).get("path") == MODELS
    return count


async def _logged(done: Callable[[], bool]) -> None:
    """Until the access lines are in (the gateways' output is read as it comes)."""
    for _ in range(100):
        if done():
            return
        await asyncio.sleep(0.05)
    assert done()


async def test_caddy_spreads_requests_over_both_gateways_and_skips_a_dead_one(
    tmp_path: Path, engine: FakeEngine, pg_database: str
) -> None:
    assert find_caddy(), "caddy is not installed (tests/setup/system_packages.sh)"
    async with gateways(tmp_path, engine.base_url, database=pg_database) as cluster:
        first, second = cluster.gateways
        upstreams = f"127.0.0.1:{first.serving.port} 127.0.0.1:{second.serving.port}"
        (tmp_path / "caddy").mkdir()
        with Caddy(
            workdir=tmp_path / "caddy",
            upstream_port=first.serving.port,
            extra_env={"CADDY_UPSTREAM": upstreams},
        ) as caddy:
            connector = aiohttp.TCPConnector(ssl=caddy.ssl_context(), force_close=True)
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

                async def status() -> int:
                    url = caddy.base_url + MODELS
                    async with http.get(url, headers=bearer(cluster.accounts.user_key)) as r:
                        await r.read()
                        return r.status

                assert [await status() for _ in range(30)] == [200] * 30
                await _logged(lambda: _served(first) + _served(second) == 30)
                assert _served(first) > 0 and _served(second) > 0
                first.proc.send_signal(signal.SIGKILL)
                await first.proc.wait()
                before = _served(second)
                assert [await status() for _ in range(30)] == [200] * 30
                await _logged(lambda: _served(second) == before + 30)
