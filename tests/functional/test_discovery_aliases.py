"""Model discovery (models appear and vanish without a restart, several upstreams merge) and
model aliases (routing, rewriting, authorization and accounting by the client's name)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from fakes.engine import FakeEngine, running_engine, start_engine

from .helpers import CHAT, MESSAGES, MODELS, Gateway, bearer, chat_body, running_gateway

FAST: dict[str, Any] = {"discover_interval": 0.1, "health": {"interval": 0.1, "unhealthy_after": 1}}


async def listed(session: aiohttp.ClientSession, gw: Gateway, key: str) -> dict[str, str]:
    """The /v1/models list: id -> owned_by."""
    async with session.get(gw.url(MODELS), headers=bearer(key)) as r:
        assert r.status == 200
        return {m["id"]: m["owned_by"] for m in (await r.json())["data"]}


async def wait_listed(
    session: aiohttp.ClientSession, gw: Gateway, want: dict[str, str], within: float = 5.0
) -> None:
    deadline = time.monotonic() + within
    while (seen := await listed(session, gw, gw.accounts.user_key)) != want:
        assert time.monotonic() < deadline, f"models {seen}, wanted {want}"
        await asyncio.sleep(0.05)


async def post(
    session: aiohttp.ClientSession, gw: Gateway, key: str, body: dict[str, Any], path: str = CHAT
) -> tuple[int, Any]:
    async with session.post(gw.url(path), headers=bearer(key), json=body) as r:
        return r.status, await r.json(content_type=None)


def discovering(name: str, engine: FakeEngine) -> dict[str, Any]:
    return {"name": name, "url": engine.base_url, "discover": True}


async def test_models_appear_and_vanish_without_restart(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with running_engine(models=["tiny"]) as engine:
        upstreams = [discovering("local", engine)]
        async with running_gateway(tmp_path, engine.base_url, upstreams=upstreams, **FAST) as gw:
            key = gw.accounts.user_key
            assert await listed(session, gw, key) == {"tiny": "local"}
            assert (await post(session, gw, key, chat_body("fresh")))[0] == 404
            engine.models = ["tiny", "fresh"]
            await wait_listed(session, gw, {"tiny": "local", "fresh": "local"})
            status, body = await post(session, gw, key, chat_body("fresh"))
            assert (status, body["model"]) == (200, "fresh")
            engine.models = ["tiny"]
            await wait_listed(session, gw, {"tiny": "local"})
            status, body = await post(session, gw, key, chat_body("fresh"))
            assert (status, body["error"]["code"]) == (404, "model_not_found")


async def test_several_upstreams_merge_and_a_failed_one_keeps_its_list_but_is_out(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    a = await start_engine(models=["tiny", "only-a"])
    async with running_engine(models=["tiny"]) as b:
        try:
            upstreams = [discovering("a", a), discovering("b", b)]
            async with running_gateway(tmp_path, a.base_url, upstreams=upstreams, **FAST) as gw:
                key = gw.accounts.user_key
                assert await listed(session, gw, key) == {"tiny": "a,b", "only-a": "a"}
                await a.close()
                deadline = time.monotonic() + 5
                while True:
                    async with session.get(gw.url("/readyz")) as r:
                        if (await r.json())["upstreams"] == {"a": False, "b": True}:
                            break
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)  # several discovery rounds fail meanwhile
                # The last known list stays (a blip must not make models vanish) ...
                assert await listed(session, gw, key) == {"tiny": "a,b", "only-a": "a"}
                # ... but no traffic goes there while another upstream can serve.
                for _ in range(4):
                    assert (await post(session, gw, key, chat_body("tiny")))[0] == 200
                assert sum(q.path == CHAT for q in b.requests) == 4
        finally:
            await a.close()


def alias_config() -> dict[str, Any]:
    return {
        "model_aliases": {"coder": "big"},
        "roles": {
            "admin": {"models": ["*"]},
            "user": {"models": ["*"]},
            "restricted": {"models": ["tiny", "coder"]},  # the alias, not the model behind it
        },
    }


async def test_alias_is_rewritten_for_the_engine_and_authorized_by_its_own_name(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url, **alias_config()) as gw:
        rita, alice = gw.accounts.restricted_key, gw.accounts.user_key
        status, body = await post(session, gw, rita, chat_body("coder", max_tokens=2))
        assert status == 200, body
        status, body = await post(
            session,
            gw,
            rita,
            {"model": "coder", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]},
            MESSAGES,
        )
        assert status == 200, body
        seen = [q for q in engine.requests if q.path in (CHAT, MESSAGES)]
        assert [q.body["model"] for q in seen] == ["big", "big"]
        assert seen[0].body["max_tokens"] == 2  # everything else as the client sent it
        status, body = await post(session, gw, rita, chat_body("big"))
        assert (status, body["error"]["code"]) == (403, "model_not_allowed")
        assert len(engine.requests) == 2

        assert await listed(session, gw, rita) == {"coder": "local", "tiny": "local"}
        assert set(await listed(session, gw, alice)) == {"big", "coder", "tiny"}

        rows = await gw.usage(2)
    assert [r.model for r in rows] == ["coder", "coder"]  # the name the client used
    assert [r.completion_tokens for r in rows] == [2, 3]


async def test_disabling_the_model_behind_an_alias_disables_the_alias(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url, **alias_config()) as gw:
        key = gw.accounts.user_key
        async with gw.admin() as admin:
            await admin.set_model_enabled("big", False)
        deadline = time.monotonic() + 3
        while (await post(session, gw, key, chat_body("coder")))[0] != 404:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert set(await listed(session, gw, key)) == {"tiny"}
