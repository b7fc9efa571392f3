"""Local password login: argon2id, CSRF on the form, rate limits per address and per user."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import unquote

import pytest
from fakes.engine import FakeEngine

from authproxy.login.passwords import hash_password

from .browser import Browser, browser
from .helpers import AUTHPROXY, MODELS, Gateway, cli_env, run_cli, running_gateway
from .wire import raw_request

PASSWORD = "correct horse battery staple"
COOKIE = "authproxy_session"


@pytest.fixture
async def local(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[Gateway]:
    """No OIDC provider: the sign-in page offers only the password form."""
    limits = {"max_failures_per_user": 3, "max_failures_per_address": 5, "window": 60}
    async with running_gateway(tmp_path, engine.base_url, password_login=limits) as gw:
        async with gw.admin() as admin:
            await admin.set_password("alice", hash_password(PASSWORD))
        yield gw


@pytest.fixture
async def defaults(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[Gateway]:
    """The default limits: 5 failures per user name, 20 per address."""
    async with running_gateway(tmp_path, engine.base_url) as gw:
        assert gw.config.password_login.max_failures_per_user == 5
        assert gw.config.password_login.max_failures_per_address == 20
        async with gw.admin() as admin:
            await admin.set_password("alice", hash_password(PASSWORD))
        yield gw


async def _form(b: Browser) -> str:
    page = await b.get("/auth/login?next=/account")
    assert page.status == 200 and 'name="password"' in page.text and "/auth/oidc" not in page.text
    return page.csrf()


async def _login(b: Browser, user: str, password: str, csrf: str | None = None) -> int:
    token = csrf if csrf is not None else await _form(b)
    form = {"username": user, "password": password, "csrf": token, "next": "/account"}
    return (await b.post("/auth/login", form)).status


async def test_password_login_and_wrong_passwords(local: Gateway) -> None:
    async with browser(local) as b:
        assert await _login(b, "alice", "wrong password!") == 401
        assert await _login(b, "nobody", PASSWORD) == 401  # same answer for unknown names
        assert b.cookie(COOKIE) is None
        assert await _login(b, "alice", PASSWORD) == 303
        page = await b.account()
        assert page.status == 200 and 'id="user">alice<' in page.text
        assert (await b.get(MODELS)).status == 200
    entries = await _audit_until(local, ("session.login", "alice", "via=password"))
    assert ("auth.failed", "alice", "reason=bad_password via=password") in entries


async def _audit_until(gw: Gateway, wanted: tuple[str, str, str]) -> list[tuple[str, str, str]]:
    """The audit entries once `wanted` is among them (the batched writer flushes shortly)."""
    for _ in range(100):
        async with gw.admin() as admin:
            entries = [
                (e.action, e.target or "", e.detail or "") for e in await admin.audit_log(since=0)
            ]
        if wanted in entries:
            return entries
        await asyncio.sleep(0.05)
    raise AssertionError(f"{wanted} never audited")


BAD_ALICE = ("auth.failed", "alice", "reason=bad_password via=password")


async def _audit_count(gw: Gateway, entry: tuple[str, str, str], *, at_least: int) -> int:
    """How often `entry` is in the audit table, once it is there `at_least` times (or 5 s)."""
    count = 0
    for _ in range(100):
        async with gw.admin() as admin:
            count = [
                (e.action, e.target or "", e.detail or "") for e in await admin.audit_log(since=0)
            ].count(entry)
        if count >= at_least:
            break
        await asyncio.sleep(0.05)
    return count


async def test_form_without_csrf_token_is_refused(local: Gateway) -> None:
    async with browser(local) as b:
        await _form(b)
        assert await _login(b, "alice", PASSWORD, csrf="") == 403
        assert await _login(b, "alice", PASSWORD, csrf="forged") == 403
    async with browser(local) as fresh:  # a token without the login cookie it belongs to
        token = await _form(fresh)
        async with browser(local) as other:
            assert await _login(other, "alice", PASSWORD, csrf=token) == 403


async def test_disabled_user_is_refused(local: Gateway) -> None:
    async with local.admin() as admin:
        await admin.set_disabled("alice", True)
    async with browser(local) as b:
        assert await _login(b, "alice", PASSWORD) == 403
        assert b.cookie(COOKIE) is None


async def test_rate_limited_per_user_then_per_address(local: Gateway) -> None:
    async with browser(local) as b:
        for _ in range(3):
            assert await _login(b, "alice", "wrong password!") == 401
        started = time.perf_counter()
        assert await _login(b, "alice", PASSWORD) == 429  # even the right one: no check made
        assert time.perf_counter() - started < 0.5
        assert await _login(b, "rita", "wrong password!") == 401
        assert await _login(b, "root", "wrong password!") == 401
        assert await _login(b, "root", "wrong password!") == 429  # the address: 5 failures


async def _guess(b: Browser, csrf: str, user: str, password: str) -> int:
    form = {"username": user, "password": password, "csrf": csrf, "next": "/account"}
    reply = await b.post("/auth/login", form)
    assert reply.status != 429 or int(reply.headers["Retry-After"]) > 0
    return reply.status


async def _first_refusal(guesses: Sequence[asyncio.Task[int]]) -> bool:
    """Wait for the first guess answered 429; False if none was."""
    for answer in asyncio.as_completed(guesses):
        if await answer == 429:
            return True
    return False


async def test_concurrent_guesses_for_one_user_check_at_most_the_limit(defaults: Gateway) -> None:
    """29 wrong guesses at once, then the right password while they are still being checked:
    5 are checked, the others (the right one too) are refused without a check."""
    async with browser(defaults) as b:
        token = await _form(b)
        wrong = [
            asyncio.create_task(_guess(b, token, "alice", f"wrong password {i}")) for i in range(29)
        ]
        limit_reached = await _first_refusal(wrong)
        right = await _guess(b, token, "alice", PASSWORD)
        still_checking = sum(not guess.done() for guess in wrong)
        statuses = Counter(await asyncio.gather(*wrong))
        assert b.cookie(COOKIE) is None
    assert limit_reached and right == 429 and still_checking > 0
    assert statuses == {401: 5, 429: 24}
    assert await _audit_count(defaults, BAD_ALICE, at_least=5) == 5
    async with browser(defaults) as b:  # still shut for alice, whatever the address says
        assert await _login(b, "alice", PASSWORD) == 429


async def test_concurrent_guesses_from_one_address_check_at_most_its_limit(
    defaults: Gateway,
) -> None:
    async with browser(defaults) as b:
        token = await _form(b)
        names = [f"user{i}" for i in range(29)] + ["alice"]
        statuses = await asyncio.gather(*(_guess(b, token, n, "wrong password!") for n in names))
    assert Counter(statuses) == {401: 20, 429: 10}


async def test_successful_logins_do_not_count_against_the_address(local: Gateway) -> None:
    """The check is counted before it runs; a right password takes that back."""
    for _ in range(7):  # the address limit is 5
        async with browser(local) as b:
            assert await _login(b, "alice", PASSWORD) == 303
    async with browser(local) as b:
        assert await _login(b, "alice", "wrong password!") == 401


# `next` as it appears in a query string: each is answered, with a redirect to /account.
BAD_NEXT = {
    "control": "/%01",
    "nul": "/%00",
    "delete": "/%7F",
    "crlf": "/%0D%0ASet-Cookie:%20a=b",
    "next-line": "/%C2%85",
    "line-separator": "/%E2%80%A8",
    "tab": "/%09/evil.example",
    "space": "/%20/evil.example",
    "scheme-relative": "//evil.example",
    "backslash": "/%5Cevil.example",
    "encoded-slash": "/%252Fevil.example",
    "encoded-backslash": "/%255Cevil.example",
    "encoded-crlf": "/%250D%250ASet-Cookie:%2520a=b",
    "absolute": "https://evil.example",
    "sign-in-page": "/auth/logout",
}


@pytest.mark.parametrize("query", BAD_NEXT.values(), ids=list(BAD_NEXT))
async def test_a_bad_next_is_answered_with_the_account_page(local: Gateway, query: str) -> None:
    async with browser(local) as b:
        token = await _form(b)
        form = {"username": "alice", "password": PASSWORD, "csrf": token, "next": unquote(query)}
        signed_in = await b.post("/auth/login", form)
        assert (signed_in.status, signed_in.location) == (303, "/account")
        cookie = b.cookie(COOKIE)
    assert cookie is not None
    for headers in ([("Cookie", f"{COOKIE}={cookie}")], []):  # signed in: a redirect; else a page
        reply = await raw_request(local.port, "GET", f"/auth/login?next={query}", headers)
        if headers:
            assert (reply.status, reply.headers["location"]) == (303, "/account")
        else:
            assert reply.status == 200 and b'name="next" value="/account"' in reply.body


async def test_verification_runs_off_the_event_loop(local: Gateway) -> None:
    """While argon2id works on several logins, the gateway keeps answering at once."""
    async with browser(local) as b:
        token = await _form(b)
        form = {"username": "alice", "password": "wrong password!", "csrf": token}
        logins = [asyncio.create_task(b.post("/auth/login", form)) for _ in range(2)]
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        health = await b.get("/healthz")
        elapsed = time.perf_counter() - started
        await asyncio.gather(*logins)
    assert health.status == 200 and elapsed < 0.1  # one argon2id check takes ~0.2 s here


async def test_users_passwd_cli_reads_stdin(local: Gateway, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *_cli(local, "users", "passwd", "rita"),
        env=cli_env(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(b"a new password for rita\n")
    assert proc.returncode == 0, err.decode()
    assert PASSWORD not in out.decode() and "rita" in out.decode()
    async with browser(local) as b:
        assert await _login(b, "rita", "a new password for rita") == 303
    short = await run_cli("--config", str(local.config_path), "users", "passwd", "rita")
    assert short.returncode == 1 and short.stderr.startswith("authproxy: ")


def _cli(gw: Gateway, *args: str) -> list[str]:
    return [AUTHPROXY, "--config", str(gw.config_path), *args]
