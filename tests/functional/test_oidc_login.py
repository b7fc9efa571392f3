"""OIDC login against a scriptable provider: the happy path and every refusal."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from .browser import COOKIE, Browser, browser, session_rows
from .fake_idp import FakeIdp, Person, new_key
from .helpers import Gateway


@pytest.fixture
async def web(sso: tuple[Gateway, FakeIdp]) -> AsyncIterator[Browser]:
    async with browser(sso[0]) as b:
        yield b


async def test_login_creates_the_user_and_lands_on_the_account_page(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    gw, idp = sso
    idp.person = Person("sub-boss", "bossa", groups=["llm-admins", "staff"])
    done = await web.oidc_login()
    assert (done.status, done.location) == (303, "/account")
    cookie = done.cookie_attributes(COOKIE)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http, no TLS proxy in front
    page = await web.account()
    assert page.status == 200
    assert 'id="user">bossa<' in page.text and 'id="role">admin<' in page.text
    async with gw.admin() as admin:
        user = next(u for u in await admin.list_users() if u.name == "bossa")
    assert (user.role, user.email) == ("admin", "bossa@example.test")
    # The session id is stored only as a digest.
    [row] = session_rows(gw)
    assert web.cookie(COOKIE) not in (row["id_hash"], str(row["id_hash"]))
    assert len(row["id_hash"]) == 32 and row["via"] == "oidc"


async def test_secure_cookie_behind_a_tls_proxy(sso: tuple[Gateway, FakeIdp], web: Browser) -> None:
    callback = await web.start_oidc()
    done = await web.get(callback, headers={"X-Forwarded-Proto": "https"})
    assert done.status == 303
    assert "Secure" in done.cookie_attributes(COOKIE)


async def test_role_follows_the_provider_at_every_login(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    idp = sso[1]
    idp.person = Person("sub-c", "carol", groups=["llm-admins"])
    await web.oidc_login()
    idp.person = Person("sub-c", "carol-renamed", groups=["staff"])  # same sub: same user
    await web.oidc_login()
    page = await web.account()
    assert 'id="user">carol<' in page.text and 'id="role">user<' in page.text


async def test_tampered_state_is_refused(sso: tuple[Gateway, FakeIdp], web: Browser) -> None:
    idp = sso[1]
    callback = urlsplit(await web.start_oidc())
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    params["state"] = params["state"][:-2] + ("AA" if not params["state"].endswith("AA") else "BB")
    refused = await web.get(f"{callback.path}?{urlencode(params)}")
    assert refused.status == 400 and "unknown" in refused.text
    assert web.cookie(COOKIE) is None and idp.token_requests == 0


async def test_replayed_callback_and_replayed_code_are_refused(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    callback = await web.start_oidc()
    assert (await web.get(callback)).status == 303
    again = await web.get(callback)  # the same state and code, a second time
    assert again.status == 400 and "used already" in again.text
    # A fresh login of this browser, but carrying the old code: the provider refuses it.
    fresh = urlsplit(await web.start_oidc())
    new_state = parse_qs(fresh.query)["state"][0]
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    replay = await web.get(f"/auth/callback?{urlencode({'code': old_code, 'state': new_state})}")
    assert replay.status == 400 and "invalid_grant" in replay.text


async def test_callback_from_another_browser_is_refused(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    callback = await web.start_oidc()
    async with browser(sso[0]) as victim:  # login CSRF: the attacker's callback, victim's browser
        refused = await victim.get(callback)
    assert refused.status == 400 and "another browser" in refused.text


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"nonce": "not-the-nonce"}, "nonce"),
        ({"aud": "some-other-client"}, "aud"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"exp": -3600}, "expired"),  # relative to now, when the test runs
        ({"iat": +3600}, "future"),
    ],
    ids=["wrong-nonce", "other-audience", "other-issuer", "expired", "issued-in-future"],
)
async def test_bad_id_tokens_are_refused(
    sso: tuple[Gateway, FakeIdp], web: Browser, tamper: dict[str, object], reason: str
) -> None:
    gw, idp = sso
    now = int(time.time())
    idp.tamper = {k: now + v if isinstance(v, int) else v for k, v in tamper.items()}
    refused = await web.oidc_login()
    assert refused.status == 400
    assert "ID token was refused" in refused.text and reason in refused.text
    assert web.cookie(COOKIE) is None and session_rows(gw) == []


async def test_clock_skew_is_allowed_but_bounded(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    idp = sso[1]
    idp.tamper = {"exp": int(time.time()) - 30}  # within the default 60 s of skew
    assert (await web.oidc_login()).status == 303
    idp.tamper = {"exp": int(time.time()) - 90}  # beyond it
    assert (await web.oidc_login()).status == 400


@pytest.mark.parametrize("kid", ["k1", "unknown-kid"], ids=["same-kid", "unknown-kid"])
async def test_token_signed_by_another_key_is_refused(
    sso: tuple[Gateway, FakeIdp], web: Browser, kid: str
) -> None:
    idp = sso[1]
    idp.sign_with = new_key(kid)
    refused = await web.oidc_login()
    assert refused.status == 400
    assert "signature" in refused.text or "key the provider does not list" in refused.text


async def test_provider_error_is_shown_not_followed(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    callback = urlsplit(await web.start_oidc())
    state = parse_qs(callback.query)["state"][0]
    query = urlencode({"error": "access_denied", "state": state})
    refused = await web.get(f"/auth/callback?{query}")
    assert refused.status == 400 and "access_denied" in refused.text


async def test_next_is_only_ever_a_local_path(sso: tuple[Gateway, FakeIdp], web: Browser) -> None:
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        done = await web.oidc_login(next_path=evil)
        assert done.location == "/account", evil
