"""Authorization: roles, per-model allow-lists, /v1/models per principal, model switches."""

from __future__ import annotations

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MESSAGES,
    MODELS,
    Gateway,
    bearer,
    chat_body,
    poll_status,
)
from .wire import assert_error_shape


async def _model_ids(session: aiohttp.ClientSession, gw: Gateway, key: str) -> list[str]:
    async with session.get(gw.url(MODELS), headers=bearer(key)) as r:
        assert r.status == 200
        body = await r.json()
    assert body["object"] == "list"
    return [m["id"] for m in body["data"]]


def _body_for(path: str, model: str) -> dict[str, object]:
    if path == EMBEDDINGS:
        return {"model": model, "input": "a b"}
    if path == COMPLETIONS:
        return {"model": model, "prompt": "a b"}
    if path == MESSAGES:
        return {"model": model, "max_tokens": 2, "messages": [{"role": "user", "content": "a"}]}
    return chat_body(model)


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES])
async def test_restricted_role_is_refused_big_on_every_endpoint(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession, path: str
) -> None:
    key = gateway.accounts.restricted_key
    async with session.post(
        gateway.url(path), headers=bearer(key), json=_body_for(path, "big")
    ) as r:
        assert r.status == 403
        err = assert_error_shape(await r.json())
    assert (err["type"], err["code"]) == ("permission_error", "model_not_allowed")
    assert engine.requests == []
    async with session.post(
        gateway.url(path), headers=bearer(key), json=_body_for(path, "tiny")
    ) as r:
        assert r.status == 200, await r.text()
    assert [q.body["model"] for q in engine.requests] == ["tiny"]


async def test_models_list_is_per_principal(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    assert await _model_ids(session, gateway, gateway.accounts.restricted_key) == ["tiny"]
    assert sorted(await _model_ids(session, gateway, gateway.accounts.admin_key)) == [
        "big",
        "tiny",
    ]
    assert sorted(await _model_ids(session, gateway, gateway.accounts.user_key)) == [
        "big",
        "tiny",
    ]
    assert engine.requests == []  # answered by the gateway, not relayed


async def test_unknown_model_is_404_model_not_found(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    for key in (gateway.accounts.admin_key, gateway.accounts.restricted_key):
        async with session.post(
            gateway.url(CHAT), headers=bearer(key), json=chat_body("no-such-model")
        ) as r:
            assert r.status == 404
            assert assert_error_shape(await r.json())["code"] == "model_not_found"
    assert engine.requests == []


async def test_disabled_model_disappears_within_a_second(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    key = gateway.accounts.user_key

    async def big_status() -> int:
        async with session.post(gateway.url(CHAT), headers=bearer(key), json=chat_body("big")) as r:
            if r.status != 200:
                assert assert_error_shape(await r.json())["code"] == "model_not_found"
            return r.status

    assert await big_status() == 200
    async with gateway.admin() as admin:
        await admin.set_model_enabled("big", False)
    took, _ = await poll_status(big_status, 404, 1.0)
    assert took <= 1.0
    assert await _model_ids(session, gateway, key) == ["tiny"]
    assert await _model_ids(session, gateway, gateway.accounts.admin_key) == ["tiny"]
    requests_before = len(engine.requests)
    assert await big_status() == 404
    assert len(engine.requests) == requests_before  # a disabled model never reaches the engine

    async with gateway.admin() as admin:
        await admin.set_model_enabled("big", True)
    await poll_status(big_status, 200, 1.0)
    assert sorted(await _model_ids(session, gateway, key)) == ["big", "tiny"]
