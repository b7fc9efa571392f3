"""The admin's read of a running gateway's /metrics (open streams, quota rejections)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from fakes.engine import FakeEngine

from authproxy.admin.gateway_status import gateway_status, metrics_url
from authproxy.config.schema import Config

from .helpers import CHAT, bearer, chat_body, free_port, running_gateway


async def test_quota_rejections_and_upstreams_of_a_running_gateway(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    roles = {
        "admin": {"models": ["*"]},
        "user": {"models": ["*"], "requests_per_minute": 1},
        "restricted": {"models": ["tiny"]},
    }
    async with running_gateway(tmp_path, engine.base_url, roles=roles) as gw:
        before = await gateway_status(gw.url("/metrics"))
        for _ in range(3):
            async with session.post(
                gw.url(CHAT), headers=bearer(gw.accounts.user_key), json=chat_body()
            ) as r:
                await r.read()
        after = await gateway_status(gw.url("/metrics"))
    assert before.reachable and before.rejections == 0 and before.open_streams == 0
    assert after.reachable and after.quota_rejections == {"rpm": 2}
    assert after.upstream_up == {"local": True}


async def test_no_gateway_is_said_plainly() -> None:
    status = await gateway_status(f"http://127.0.0.1:{free_port()}/metrics")
    assert (status.reachable, status.detail) == (False, "not running")


def test_the_url_is_the_listen_address_or_loopback_for_a_wildcard() -> None:
    def url(host: str) -> str:
        return metrics_url(Config.model_validate({"listen": {"host": host, "port": 8400}}))

    assert url("0.0.0.0") == "http://127.0.0.1:8400/metrics"
    assert url("::") == "http://[::1]:8400/metrics"
    assert url("127.0.0.1") == "http://127.0.0.1:8400/metrics"
