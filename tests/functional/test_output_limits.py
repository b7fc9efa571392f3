"""Token quotas bound what the engine can generate, whatever the client writes: the reserved
limit is written into the body the engine runs (the fake engine ranks the limit fields as
llama-server does: n_predict, then max_completion_tokens, then max_tokens)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine

from authproxy.proxy.request_body import estimate_prompt_tokens

from .helpers import CHAT, COMPLETIONS, Gateway, bearer, chat_body, running_gateway
from .wire import assert_error_shape


def _roles(**user: Any) -> dict[str, Any]:
    return {"admin": {"models": ["*"]}, "user": {"models": ["*"], **user}, "restricted": {}}


async def _post(
    session: aiohttp.ClientSession, gw: Gateway, body: Any, path: str = CHAT
) -> tuple[int, Any]:
    headers = {**bearer(gw.accounts.user_key), "Content-Type": "application/json"}
    data = body if isinstance(body, bytes) else json.dumps(body)
    async with session.post(gw.url(path), data=data, headers=headers) as r:
        return r.status, await r.json()


async def test_concurrent_requests_end_within_the_quota_whatever_limit_fields_they_carry(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    quota = 5000
    body = chat_body(max_tokens=5, n_predict=4000, ignore_eos=True)
    async with running_gateway(tmp_path, engine.base_url, roles=_roles(tokens_per_day=quota)) as gw:
        results = await asyncio.gather(*(_post(session, gw, body) for _ in range(20)))
        served = [status for status, _ in results if status == 200]
        rows = await gw.usage(len(served))
    charged = sum(r.prompt_tokens + r.completion_tokens for r in rows)
    assert served and charged <= quota, (charged, [s for s, _ in results])
    for seen in engine.requests:  # the gateway's limit, under the names the engines read
        assert "n_predict" not in seen.body
        assert seen.body["max_tokens"] == seen.body["max_completion_tokens"] <= 4000


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"max_tokens": -1}, "invalid_max_tokens"),
        ({"n_predict": -1}, "invalid_max_tokens"),
        ({"max_tokens": 0}, "invalid_max_tokens"),
        ({"max_completion_tokens": 2.5}, "invalid_max_tokens"),
        ({"max_tokens": "100"}, "invalid_max_tokens"),
        ({"n": 0}, "invalid_n"),
        ({"n": 2}, "too_many_outputs"),
    ],
)
async def test_limits_that_bound_nothing_are_400(
    gateway: Gateway,
    engine: FakeEngine,
    session: aiohttp.ClientSession,
    extra: dict[str, Any],
    code: str,
) -> None:
    status, payload = await _post(session, gateway, chat_body(**extra))
    assert status == 400
    assert assert_error_shape(payload)["code"] == code
    assert engine.requests == []


async def test_without_a_limit_the_engine_gets_the_default_reserved(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    assert (await _post(session, gateway, chat_body()))[0] == 200
    body = {"model": "tiny", "prompt": "once upon"}
    assert (await _post(session, gateway, body, COMPLETIONS))[0] == 200
    default = gateway.config.quotas.default_max_tokens
    chat, completion = (r.body for r in engine.requests)
    assert chat["max_tokens"] == chat["max_completion_tokens"] == default
    assert completion["max_tokens"] == default and "max_completion_tokens" not in completion


async def test_several_outputs_are_reserved_for_clamped_together_and_charged(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = chat_body(n=3, max_tokens=20)
    room = estimate_prompt_tokens(body) + 30  # room for 3 outputs of 10 tokens
    async with running_gateway(
        tmp_path,
        engine.base_url,
        roles=_roles(tokens_per_day=room),
        quotas={"max_outputs": 3},
    ) as gw:
        assert (await _post(session, gw, body))[0] == 200
        (row,) = await gw.usage(1)
    (seen,) = engine.requests
    assert seen.body["n"] == 3 and seen.body["max_tokens"] == 10
    # Like llama-server, the fake engine reports one output's usage: the reservation is charged.
    assert (row.prompt_tokens, row.completion_tokens) == (room - 30, 30)


async def test_a_client_that_leaves_before_the_first_byte_pays_its_prompt(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = chat_body(max_tokens=4, fake={"fault": "stall_headers"})
    request = asyncio.ensure_future(
        session.post(gateway.url(CHAT), headers=bearer(gateway.accounts.user_key), json=body)
    )
    await engine.wait_until(lambda: engine.open_requests == 1, within=5.0)
    request.cancel()  # the engine has the prompt; the client goes away before any byte
    with pytest.raises(asyncio.CancelledError):
        await request
    (row,) = await gateway.usage(1)
    assert row.status == 499
    assert (row.prompt_tokens, row.completion_tokens) == (estimate_prompt_tokens(body), 0)
    assert row.usage_source == "estimated"
