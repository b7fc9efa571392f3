"""Malformed browser requests (forms, cookies, Origin) get a clear 4xx, never a 500.

Sent at the byte level: browsers never send these, scripts and scanners do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes.engine import FakeEngine

from authproxy.login.passwords import hash_password

from .browser import COOKIE, browser
from .helpers import CHAT, Gateway, running_gateway
from .wire import RawResponse, assert_error_shape, raw_request

PASSWORD = "correct horse battery staple"
FORM = "application/x-www-form-urlencoded"


@dataclass
class SignedIn:
    gateway: Gateway
    session: str  # the session cookie's value
    login_cookie: str  # the sign-in form's cookie and its CSRF token
    login_csrf: str
    account_csrf: str  # the account page's form token

    async def send(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
    ) -> RawResponse:
        return await raw_request(self.gateway.port, method, path, headers, body)

    async def active_keys(self) -> int:
        async with self.gateway.admin() as admin:
            return len([k for k in await admin.list_keys("alice") if k.revoked_at is None])


@pytest.fixture
async def signed_in(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[SignedIn]:
    async with running_gateway(tmp_path, engine.base_url) as gw:
        async with gw.admin() as admin:
            await admin.set_password("alice", hash_password(PASSWORD))
        async with browser(gw) as b:
            login = (await b.get("/auth/login")).csrf()
            login_cookie = b.cookie(COOKIE + "_login")
            form = {"username": "alice", "password": PASSWORD, "csrf": login, "next": "/"}
            assert (await b.post("/auth/login", form)).status == 303
            session = b.cookie(COOKIE)
            account = (await b.account()).csrf(1)
        assert session is not None and login_cookie is not None
        yield SignedIn(gw, session, login_cookie, login, account)


def _form_error(reply: RawResponse) -> None:
    assert reply.status == 400, reply.body[:300]
    assert assert_error_shape(reply.json())["code"] == "invalid_form"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (FORM, b"username=\xff\xfe&password=whatever"),  # not UTF-8
        (FORM + "; charset=bogus", b"username=alice"),
        ("multipart/form-data", b"username=alice"),  # no boundary
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disp"),  # cut off
        ("multipart/form-data; boundary=x", b"--x\r\n\r\nalice\r\n--x--\r\n"),  # no field name
    ],
    ids=["bad-utf8", "bad-charset", "no-boundary", "cut-off-part", "nameless-part"],
)
async def test_an_unreadable_form_is_a_400(
    signed_in: SignedIn, content_type: str, body: bytes
) -> None:
    login = [("Cookie", f"{COOKIE}_login={signed_in.login_cookie}"), ("Content-Type", content_type)]
    _form_error(await signed_in.send("POST", "/auth/login", login, body))
    session = [("Cookie", f"{COOKIE}={signed_in.session}"), ("Content-Type", content_type)]
    _form_error(await signed_in.send("POST", "/account/keys", session, body))
    _form_error(await signed_in.send("POST", "/account/keys/revoke", session, body))
    _form_error(await signed_in.send("POST", "/auth/logout", session, body))
    assert await signed_in.active_keys() == 1  # the one alice started with


async def test_a_non_ascii_csrf_token_is_refused(signed_in: SignedIn) -> None:
    session = [("Cookie", f"{COOKIE}={signed_in.session}"), ("Content-Type", FORM)]
    for path in ("/auth/logout", "/account/keys"):
        reply = await signed_in.send("POST", path, session, b"csrf=%C3%A9")
        assert reply.status == 403, path
    login = [("Cookie", f"{COOKIE}_login={signed_in.login_cookie}"), ("Content-Type", FORM)]
    form = f"username=alice&password={PASSWORD}&csrf=%C3%A9".encode()
    assert (await signed_in.send("POST", "/auth/login", login, form)).status == 403
    account = await signed_in.send("GET", "/account", [("Cookie", f"{COOKIE}={signed_in.session}")])
    assert account.status == 200  # still signed in


@pytest.mark.parametrize("value", ["\xff\xfe", "é" * 10], ids=["raw-bytes", "latin-1"])
async def test_a_non_ascii_cookie_is_no_session(signed_in: SignedIn, value: str) -> None:
    reply = await signed_in.send("GET", "/account", [("Cookie", f"{COOKIE}={value}")])
    assert reply.status == 303 and reply.headers["location"].startswith("/auth/login")
    page = await signed_in.send("GET", "/auth/login", [("Cookie", f"{COOKIE}_login={value}")])
    assert page.status == 200
    login = [("Cookie", f"{COOKIE}_login={value}"), ("Content-Type", FORM)]
    form = f"username=alice&password={PASSWORD}&csrf={signed_in.login_csrf}".encode()
    assert (await signed_in.send("POST", "/auth/login", login, form)).status == 403


async def test_a_malformed_origin_is_a_cross_origin_refusal(signed_in: SignedIn) -> None:
    headers = [
        ("Cookie", f"{COOKIE}={signed_in.session}"),
        ("Origin", "http://[::1"),
        ("Content-Type", "application/json"),
    ]
    reply = await signed_in.send("POST", CHAT, headers, b"{}")
    assert reply.status == 403
    assert assert_error_shape(reply.json())["code"] == "cross_origin_request"
