"""The account page: usage against quotas, keys shown once, create / revoke with CSRF tokens."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from fakes.engine import FakeEngine

from authproxy.login.account_page import MAX_ACTIVE_KEYS
from authproxy.store.records import ApiKey

from .browser import KEY_RE, Browser, browser, browser_gateway
from .fake_idp import FakeIdp
from .helpers import CHAT, MODELS, Gateway, bearer, chat_body


@pytest.fixture
async def sso(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[tuple[Gateway, FakeIdp]]:
    roles = {
        "admin": {"models": ["*"]},
        "user": {"models": ["tiny"], "tokens_per_day": 1000, "requests_per_minute": 30},
        "restricted": {"models": ["tiny"]},
    }
    async with browser_gateway(tmp_path, engine.base_url, roles=roles) as pair:
        yield pair


async def test_pages_need_a_session(sso: tuple[Gateway, FakeIdp]) -> None:
    gw, _ = sso
    async with browser(gw) as anonymous:
        for path in ("/account", "/"):
            reply = await anonymous.get(path)
            assert reply.status == 303 and reply.location.startswith("/auth/login"), path
        post = await anonymous.post("/account/keys", {"label": "x"})
        assert post.status == 303
        # An API key is no way into the pages either.
        keyed = await anonymous.get("/account", headers=bearer(gw.accounts.user_key))
        assert keyed.status == 303 and keyed.location.startswith("/auth/login")


async def test_create_use_and_revoke_a_key(
    sso: tuple[Gateway, FakeIdp], web: Browser, session: aiohttp.ClientSession
) -> None:
    gw, _ = sso
    page = await web.account()
    assert page.status == 200 and "No keys yet" in page.text
    assert "0 / 1,000 tokens" in page.text and "Requests a minute: 30" in page.text
    assert "Models you can use: tiny" in page.text
    made = await web.post(
        "/account/keys", {"csrf": page.csrf(1), "label": "laptop", "expires": "30d"}
    )
    assert made.status == 201 and made.headers["Cache-Control"] == "no-store"
    key = KEY_RE.search(made.text)
    assert key is not None
    secret = key.group(1)
    assert f"export OPENAI_BASE_URL={gw.base_url}/v1" in made.text
    assert f"export OPENAI_API_KEY={secret}" in made.text
    assert "@ai-sdk/openai-compatible" in made.text and "laptop" in made.text
    async with session.post(gw.url(CHAT), json=chat_body(), headers=bearer(secret)) as r:
        assert r.status == 200
    again = await web.account()  # shown once: never again
    assert secret not in again.text and secret[:9] in again.text and "laptop" in again.text
    [row] = await gw.usage(1)
    used = row.prompt_tokens + row.completion_tokens
    assert used > 0 and f"{used} / 1,000 tokens" in (await web.account()).text
    key_id = next(k.id for k in await _keys(gw, "olivia"))
    gone = await web.post("/account/keys/revoke", {"csrf": again.csrf(1), "key_id": str(key_id)})
    assert (gone.status, gone.location) == (303, "/account?done=revoked")
    async with session.get(gw.url(MODELS), headers=bearer(secret)) as r:
        assert r.status == 401
    async with gw.admin() as admin:
        actions = [(e.actor, e.action) for e in await admin.audit_log(since=0)]
    assert ("web:olivia", "key.create") in actions and ("web:olivia", "key.revoke") in actions


async def _keys(gw: Gateway, user: str) -> list[ApiKey]:
    async with gw.admin() as admin:
        return list(await admin.list_keys(user))


@pytest.mark.parametrize("token", [None, "", "forged-token"], ids=["none", "empty", "forged"])
async def test_forms_without_the_csrf_token_are_refused(
    sso: tuple[Gateway, FakeIdp], web: Browser, token: str | None
) -> None:
    gw, _ = sso
    form = {"label": "x", "expires": ""} | ({"csrf": token} if token is not None else {})
    refused = await web.post("/account/keys", form, headers={"Origin": gw.base_url})
    assert refused.status == 403 and KEY_RE.search(refused.text) is None
    assert await _keys(gw, "olivia") == []
    async with gw.admin() as admin:
        mine = await admin.create_key("olivia")
    revoke = {"key_id": str(mine.record.id)} | ({"csrf": token} if token is not None else {})
    assert (await web.post("/account/keys/revoke", revoke)).status == 403
    async with gw.admin() as admin:
        assert (await admin.list_keys("olivia"))[0].revoked_at is None


async def test_a_token_of_another_session_does_not_work(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    gw, _ = sso
    theirs = (await web.account()).csrf(1)
    async with browser(gw) as other:
        await other.oidc_login()  # the same person, another browser: another session
        refused = await other.post("/account/keys", {"csrf": theirs, "label": "x"})
    assert refused.status == 403


async def test_cannot_revoke_someone_elses_key(sso: tuple[Gateway, FakeIdp], web: Browser) -> None:
    gw, _ = sso
    page = await web.account()
    form = {"csrf": page.csrf(1), "key_id": str(gw.accounts.user_key_id)}  # alice's key
    refused = await web.post("/account/keys/revoke", form)
    assert refused.status == 404
    async with gw.admin() as admin:
        assert all(k.revoked_at is None for k in await admin.list_keys("alice"))


async def test_html_is_escaped_and_pages_are_locked_down(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    page = await web.account()
    made = await web.post(
        "/account/keys", {"csrf": page.csrf(1), "label": "<script>alert(1)</script>"}
    )
    assert "<script>alert(1)" not in made.text and "&lt;script&gt;alert(1)" in made.text
    csp = made.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert made.headers["X-Frame-Options"] == "DENY"
    assert made.headers["Referrer-Policy"] == "no-referrer"


async def test_the_key_limit_holds_under_concurrent_creations(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    gw, _ = sso
    token = (await web.account()).csrf(1)
    replies = await asyncio.gather(
        *(web.post("/account/keys", {"csrf": token, "label": f"k{i}"}) for i in range(40))
    )
    statuses = Counter(r.status for r in replies)
    assert statuses == {201: MAX_ACTIVE_KEYS, 409: 40 - MAX_ACTIVE_KEYS}
    refused = next(r for r in replies if r.status == 409)
    assert "revoke one before creating another" in refused.text
    assert KEY_RE.search(refused.text) is None
    assert len([k for k in await _keys(gw, "olivia") if k.revoked_at is None]) == MAX_ACTIVE_KEYS
    # Revoking one makes room for exactly one more.
    page = await web.account()
    first = (await _keys(gw, "olivia"))[0]
    gone = await web.post("/account/keys/revoke", {"csrf": page.csrf(1), "key_id": str(first.id)})
    assert gone.status == 303
    again = await asyncio.gather(
        *(web.post("/account/keys", {"csrf": token, "label": "more"}) for _ in range(3))
    )
    assert sorted(r.status for r in again) == [201, 409, 409]


@pytest.mark.parametrize(
    "key_id",
    ["²", "¹²", "٤", "9" * 5000, "9" * 20, "-1", "+1", "1_0", " 1", "", None],
    ids=[
        "superscript",
        "superscripts",
        "arabic",
        "huge",
        "past-sqlite",
        "negative",
        "plus",
        "underscore",
        "space",
        "empty",
        "missing",
    ],
)
async def test_a_malformed_key_id_is_a_clear_404(
    sso: tuple[Gateway, FakeIdp], web: Browser, key_id: str | None
) -> None:
    gw, _ = sso
    async with gw.admin() as admin:
        mine = await admin.create_key("olivia")  # id 4 (after root's, alice's and rita's)
    page = await web.account()
    form = {"csrf": page.csrf(1)} | ({"key_id": key_id} if key_id is not None else {})
    refused = await web.post("/account/keys/revoke", form)
    assert refused.status == 404 and "That key is not yours." in refused.text
    assert [k.revoked_at for k in await _keys(gw, "olivia")] == [None]
    assert mine.record.id == 4
