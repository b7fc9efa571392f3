"""Browser sessions: who may sign in, fixation, expiry, logout, admin revoke, and the cookie
as an API credential (same-origin only for changes)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.engine import FakeEngine

from .browser import COOKIE, Browser, browser, browser_gateway, execute, session_rows, signed_in
from .fake_idp import FakeIdp, Person
from .helpers import CHAT, MODELS, Gateway, chat_body


@pytest.fixture
async def web(sso: tuple[Gateway, FakeIdp]) -> AsyncIterator[Browser]:
    async with signed_in(sso[0]) as b:
        yield b


async def test_disabled_user_cannot_sign_in_and_loses_the_session(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    gw, _ = sso
    assert (await web.get(MODELS)).status == 200
    async with gw.admin() as admin:
        await admin.set_disabled("olivia", True)
    assert (await web.get(MODELS)).status == 401  # the live session is refused at once
    assert (await web.account()).location.startswith("/auth/login")
    refused = await web.oidc_login()
    assert refused.status == 403 and "disabled" in refused.text
    async with gw.admin() as admin:
        await admin.set_disabled("olivia", False)
    assert (await web.get(MODELS)).status == 401  # enabling again revives no old session


async def test_unknown_users_refused_when_configured(tmp_path: Path, engine: FakeEngine) -> None:
    async with (
        browser_gateway(tmp_path, engine.base_url, oidc={"unknown_users": "reject"}) as (
            gw,
            _,
        ),
        browser(gw) as b,
    ):
        refused = await b.oidc_login()
    assert refused.status == 403 and "no account" in refused.text
    async with gw.admin() as admin:
        assert "olivia" not in {u.name for u in await admin.list_users()}


async def test_an_existing_local_user_is_not_taken_over_by_name(
    sso: tuple[Gateway, FakeIdp],
) -> None:
    gw, idp = sso
    idp.person = Person("sub-mallory", "root", groups=["llm-admins"])  # "root" is the admin here
    async with browser(gw) as b:
        refused = await b.oidc_login()
        assert refused.status == 403 and "not linked" in refused.text
        assert b.cookie(COOKIE) is None


async def test_fresh_session_id_at_login(sso: tuple[Gateway, FakeIdp], web: Browser) -> None:
    gw, _ = sso
    first = web.cookie(COOKIE)
    assert first is not None
    again = await web.oidc_login()
    assert again.status == 303
    second = web.cookie(COOKIE)
    assert second not in (None, first)
    assert len(session_rows(gw)) == 1  # the session the browser came with was ended
    async with browser(gw) as planted:  # a value planted before login is never adopted
        planted.set_cookie(COOKIE, "planted-by-an-attacker")
        await planted.oidc_login()
        assert planted.cookie(COOKIE) != "planted-by-an-attacker"


@pytest.mark.parametrize("end", ["idle", "absolute"])
async def test_expired_sessions_are_refused(
    sso: tuple[Gateway, FakeIdp], web: Browser, end: str
) -> None:
    gw, _ = sso
    t = time.time()
    if end == "idle":
        idle = gw.config.sessions.idle_timeout
        execute(gw, "UPDATE sessions SET last_seen_at = ?", t - idle - 1)
    else:
        execute(gw, "UPDATE sessions SET expires_at = ?", t - 1)
    refused = await web.get(MODELS)
    assert refused.status == 401 and '"session_expired"' in refused.text
    page = await web.account()
    assert page.status == 303 and page.location == "/auth/login?next=/account"
    assert "Max-Age=0" in page.cookie_attributes(COOKIE) or web.cookie(COOKIE) in (None, "")
    assert session_rows(gw) == []


async def test_logout_ends_the_session_at_once(sso: tuple[Gateway, FakeIdp], web: Browser) -> None:
    gw, _ = sso
    token = web.cookie(COOKIE)
    page = await web.account()
    out = await web.post("/auth/logout", {"csrf": page.csrf(0)})
    assert (out.status, out.location) == (303, "/auth/login?signed_out=1")
    assert session_rows(gw) == []
    async with browser(gw) as stolen:  # the old cookie value, replayed: dead
        stolen.set_cookie(COOKIE, token or "")
        assert (await stolen.get(MODELS)).status == 401


async def test_logout_without_the_csrf_token_is_refused(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    gw, _ = sso
    refused = await web.post("/auth/logout", {})
    assert refused.status == 403
    assert len(session_rows(gw)) == 1 and (await web.get(MODELS)).status == 200


async def test_admin_ends_a_users_sessions(sso: tuple[Gateway, FakeIdp], web: Browser) -> None:
    gw, _ = sso
    async with gw.admin() as admin:
        assert [s.user_name for s in await admin.list_sessions("olivia")] == ["olivia"]
        assert await admin.end_sessions("olivia") == 1
        assert (await admin.audit_log(since=0))[0].action == "session.revoke"
    assert (await web.get(MODELS)).status == 401


async def test_cookie_api_calls_must_come_from_this_origin(
    sso: tuple[Gateway, FakeIdp], web: Browser, engine: FakeEngine
) -> None:
    gw, _ = sso
    own = gw.base_url
    assert (await web.get(MODELS)).status == 200  # reading is fine
    for headers in ({}, {"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = await web.request("POST", CHAT, json=chat_body(), headers=headers)
        assert refused.status == 403 and "cross_origin_request" in refused.text, headers
    assert engine.requests == []
    ok = await web.request("POST", CHAT, json=chat_body(), headers={"Origin": own})
    assert ok.status == 200
    usage = await gw.usage(1)
    assert usage[0].key_id is None and usage[0].user_id is not None
