"""From "I have an SSO account" to "the openai SDK works with my key", in a real browser.

Real parts only: the npm `oidc-provider` on loopback, Debian's chromium driven headless by
Playwright, the gateway as `authproxy serve`, the real llama-server behind it, and the official
openai SDK with the key the account page showed. Screenshots of the sign-in and account pages
go to `test-artifacts/` for review.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import openai
import pytest
from playwright.sync_api import BrowserContext, Page

from .chromium import ARTIFACTS, needs_chromium
from .gateway import Gateway
from .llama_server import LlamaServer, free_port
from .oidc_provider import OidcProvider

COOKIE = "authproxy_session"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

pytestmark = needs_chromium


@dataclass
class Site:
    gateway: Gateway
    provider: OidcProvider


@pytest.fixture(scope="module")
def site(llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("browser-login")
    with OidcProvider(workdir=workdir) as provider:
        port = free_port()
        redirect_url = f"http://127.0.0.1:{port}/auth/callback"
        gateway = Gateway(
            workdir=workdir,
            port=port,
            settings={
                "upstreams": [{"name": "llama", "url": llama_server.base_url, "discover": True}],
                "roles": {
                    "admin": {"models": ["*"]},
                    "user": {"models": ["*"], "tokens_per_day": 50000},
                },
                "oidc": provider.settings(redirect_url),
            },
        )
        provider.start(redirect_url)
        gateway.run("init")
        with gateway:
            yield Site(gateway, provider)


def _sign_in_at_provider(page: Page, login: str) -> None:
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password works here")
    page.click("button[type=submit]")
    page.wait_for_selector("button[type=submit]:has-text('Continue')")  # the consent prompt
    page.click("button[type=submit]:has-text('Continue')")


def _sessions(gateway: Gateway, user: str) -> int:
    db = sqlite3.connect(gateway.workdir / "data" / "authproxy.db")
    try:
        query = "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.name = ?"
        return int(db.execute(query, (user,)).fetchone()[0])
    finally:
        db.close()


def _models_status(base_url: str, cookie: str) -> int:
    request = urllib.request.Request(base_url + "/v1/models", headers={"Cookie": cookie})  # noqa: S310
    try:
        with _DIRECT.open(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_sso_to_working_key_in_a_real_browser(site: Site, browser: BrowserContext) -> None:
    gw = site.gateway
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page()
    started = time.monotonic()

    page.goto(gw.base_url + "/account")
    assert urlsplit(page.url).path == "/auth/login"
    page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)
    page.click("#sso")
    assert page.url.startswith(site.provider.issuer)
    _sign_in_at_provider(page, "erin")
    page.wait_for_url(gw.base_url + "/account")
    assert page.text_content("#user") == "erin" and page.text_content("#role") == "user"

    page.fill("#label", "opencode on my laptop")
    page.click("#create button[type=submit]")
    page.wait_for_selector("#newkey")
    elapsed = time.monotonic() - started
    env = (page.text_content("#env") or "").strip().splitlines()
    key = (page.text_content("#key") or "").strip()
    browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=gw.base_url)
    page.click("button[data-copy=env]")
    assert page.evaluate("navigator.clipboard.readText()").strip().splitlines() == env
    page.screenshot(path=str(ARTIFACTS / "account.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "account-phone.png"), full_page=True)
    print(f"\nbrowser login to a new key: {elapsed:.1f}s")
    assert elapsed < 60

    # Exactly what the page told the user to paste.
    assert env == [f"export OPENAI_BASE_URL={gw.base_url}/v1", f"export OPENAI_API_KEY={key}"]
    client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=key, max_retries=0)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Hello"}], max_tokens=8
    )
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    cookie = next(c for c in browser.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    session_cookie = f"{COOKIE}={cookie['value']}"
    assert _sessions(gw, "erin") == 1
    assert "erin" in gw.run("sessions", "list")

    page.set_viewport_size({"width": 1100, "height": 900})
    page.click("#logout")
    page.wait_for_url(gw.base_url + "/auth/login?signed_out=1")
    assert _sessions(gw, "erin") == 0
    assert COOKIE not in {c["name"] for c in browser.cookies()}
    assert _models_status(gw.base_url, session_cookie) == 401  # the old cookie is dead
    page.goto(gw.base_url + "/account")
    assert urlsplit(page.url).path == "/auth/login"
    # The key outlives the browser session: it is for tools.
    assert [m.id for m in client.models.list().data] == ["tiny"]


def test_admin_group_and_replayed_callback_with_the_real_provider(
    site: Site, browser: BrowserContext
) -> None:
    gw = site.gateway
    page = browser.new_page()
    callbacks: list[str] = []
    page.on(
        "request",
        lambda r: callbacks.append(r.url) if urlsplit(r.url).path == "/auth/callback" else None,
    )
    page.goto(gw.base_url + "/auth/login")
    page.click("#sso")
    _sign_in_at_provider(page, "boss-fay")
    page.wait_for_url(gw.base_url + "/account")
    assert page.text_content("#role") == "admin"  # groups: llm-admins -> admin
    assert len(callbacks) == 1
    page.goto(callbacks[0])  # the same code and state again
    assert "used already" in (page.text_content("main") or "")
    page.goto(gw.base_url + "/account")  # the replay did not touch the real session
    assert page.text_content("#user") == "boss-fay"
    gw.run("sessions", "revoke", "boss-fay")
    page.goto(gw.base_url + "/account")
    assert urlsplit(page.url).path == "/auth/login"
