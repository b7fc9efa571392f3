"""Authentication: every request, on its raw path, before routing; both key headers alike."""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp
import pytest
from fakes.engine import FakeEngine, start_engine

from .helpers import (
    CHAT,
    MODELS,
    Gateway,
    bearer,
    chat_body,
    poll_status,
    running_gateway,
)
from .wire import assert_error_shape, raw_request

BAD_KEY = "sk-" + "A" * 43  # well-formed, never issued


async def _status(
    session: aiohttp.ClientSession, gw: Gateway, headers: dict[str, str], path: str = MODELS
) -> tuple[int, dict[str, str]]:
    async with session.get(gw.url(path), headers=headers) as r:
        return r.status, assert_error_shape(await r.json()) if r.status >= 400 else {}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": f"Bearer {BAD_KEY}"}, "invalid_api_key"),
        ({"Authorization": "Bearer sk-short"}, "invalid_api_key"),
        ({"Authorization": "Basic eDp5"}, "invalid_api_key"),
        ({"Authorization": "Bearer"}, "invalid_api_key"),
        ({"Authorization": "Bearer not-a-key"}, "invalid_api_key"),
        ({"x-api-key": BAD_KEY}, "invalid_api_key"),
        ({"x-api-key": ""}, "invalid_api_key"),
    ],
    ids=["none", "bad", "short", "basic", "empty-bearer", "foreign-bearer", "bad-x", "empty-x"],
)
async def test_refused_credentials(
    gateway: Gateway,
    engine: FakeEngine,
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    code: str,
) -> None:
    for method, path in (("GET", MODELS), ("POST", CHAT)):
        async with session.request(
            method, gateway.url(path), headers=headers, json=chat_body()
        ) as r:
            assert r.status == 401
            err = assert_error_shape(await r.json())
            assert err["type"] == "authentication_error"
            assert err["code"] == code
            assert r.headers["X-Request-Id"]
    assert engine.requests == []


async def test_x_api_key_works_exactly_like_bearer(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    key = gateway.accounts.user_key
    for headers in (bearer(key), {"x-api-key": key}, {**bearer(key), "x-api-key": key}):
        async with session.post(gateway.url(CHAT), headers=headers, json=chat_body()) as r:
            assert r.status == 200, await r.text()
    assert (await _status(session, gateway, {"x-api-key": BAD_KEY}))[0] == 401
    assert (await _status(session, gateway, bearer(BAD_KEY)))[0] == 401
    assert len(engine.requests) == 3


@pytest.mark.parametrize("swap", [False, True])
async def test_two_headers_with_different_keys_are_refused(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession, swap: bool
) -> None:
    """Even when both keys are valid: which one would be charged is ambiguous."""
    a, b = gateway.accounts.user_key, gateway.accounts.admin_key
    if swap:
        a, b = b, a
    headers = {**bearer(a), "x-api-key": b}
    async with session.post(gateway.url(CHAT), headers=headers, json=chat_body()) as r:
        assert r.status == 401
        assert_error_shape(await r.json())
    status, _ = await _status(session, gateway, {**bearer(a), "x-api-key": BAD_KEY})
    assert status == 401
    assert engine.requests == []


async def test_expired_key_is_refused_after_expiry(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    async with gateway.admin() as admin:
        new = await admin.create_key("alice", expires_in=1.5)
    expires_at, headers = new.record.expires_at, bearer(new.secret)
    del new
    assert expires_at is not None

    seen: list[tuple[float, float, int]] = []  # (sent, answered, status)

    async def status() -> int:
        sent = time.time()
        code = (await _status(session, gateway, headers))[0]
        seen.append((sent, time.time(), code))
        return code

    await poll_status(status, 200, 1.0)  # picked up by the running gateway
    await poll_status(status, 401, 10.0)
    assert all(sent < expires_at for sent, _, code in seen if code == 200), "accepted late"
    first_ok = next(i for i, (_, _, code) in enumerate(seen) if code == 200)
    assert [code for _, _, code in seen[first_ok:]] == [200] * (len(seen) - first_ok - 1) + [401]
    assert expires_at <= seen[-1][1] <= expires_at + 1.0, "not refused at once after expiry"


async def test_unknown_path_auth_before_routing(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    # (/metrics is the gateway's own now, never the engine's: see test_metrics.py;
    # / is the browser's way to the account page: see the browser login tests; the engine's
    # admin paths, /slots and /props among them, are admin rows: test_catalogue_policy.py)
    for path in ("/v1/nope", "/infill", "/completion", "/admin", "/account/x"):
        status, err = await _status(session, gateway, {}, path)
        assert (status, err["type"]) == (401, "authentication_error"), path
        status, err = await _status(session, gateway, bearer(gateway.accounts.user_key), path)
        assert (status, err["code"]) == (404, "unknown_path"), path
        status, _ = await _status(session, gateway, bearer(BAD_KEY), path)
        assert status == 401, path
    assert engine.requests == []


TRICKS = [
    "/v1/chat/completions/../../slots",
    "/v1/models/../chat/completions",
    "/v1//models",
    "//v1/models",
    "/v1/./models",
    "/v1/chat%2Fcompletions",
    "/v1%2Fchat/completions",
    "/V1/models",
    "/v1/models/",
    "/infill",
    "/completion",
]


@pytest.mark.parametrize("target", TRICKS)
async def test_raw_path_tricks_never_reach_the_engine(
    gateway: Gateway, engine: FakeEngine, target: str
) -> None:
    body = json.dumps(chat_body()).encode()
    auth = list(bearer(gateway.accounts.user_key).items())
    for method in ("GET", "POST"):
        r = await raw_request(gateway.port, method, target, body=body)
        assert r.status == 401, (method, r.status)
        assert r.headers["content-type"].startswith("application/json")
        assert_error_shape(r.json())
        r = await raw_request(gateway.port, method, target, auth, body=body)
        assert r.status == 404, (method, r.status)
        assert assert_error_shape(r.json())["code"] == "unknown_path"
    assert engine.requests == []


async def test_absolute_form_target_cannot_choose_the_upstream(
    gateway: Gateway, engine: FakeEngine
) -> None:
    body = json.dumps(chat_body()).encode()
    auth = list(bearer(gateway.accounts.user_key).items())
    target = f"http://127.0.0.1:{engine.port}/slots"
    r = await raw_request(gateway.port, "GET", target, auth, body=body)
    assert r.status in (400, 404)
    assert_error_shape(r.json())
    assert engine.requests == []


async def test_healthz_needs_no_auth_and_readyz_follows_the_engine(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    engine = await start_engine(models=["tiny"])
    closed = False
    checks = {"interval": 0.1, "unhealthy_after": 1}
    try:
        async with running_gateway(tmp_path, engine.base_url, health=checks) as gw:
            async with session.get(gw.url("/healthz")) as r:
                assert (r.status, await r.json()) == (200, {"status": "ok"})
            async with session.get(gw.url("/readyz")) as r:
                assert r.status == 200
                assert (await r.json())["status"] == "ready"
            await engine.close()
            closed = True

            async def readyz() -> int:
                async with session.get(gw.url("/readyz")) as r:
                    return r.status

            # The state comes from the health checks, so it follows within one interval.
            await poll_status(readyz, 503, within=2.0)
            async with session.get(gw.url("/readyz")) as r:
                body = await r.json()
            assert body["upstreams"] == {"local": False}
            async with session.get(gw.url("/healthz")) as r:
                assert r.status == 200
    finally:
        if not closed:
            await engine.close()
