"""A cookie-keeping HTTP client that walks the browser login flows step by step, and the
gateway + fake provider fixtures the browser-login tests share."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from yarl import URL

from .fake_idp import FakeIdp, running_idp
from .helpers import Gateway, free_port, running_gateway

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
COOKIE = "authproxy_session"  # the session cookie
KEY_RE = re.compile(r'<code class="secret" id="key">(sk-[A-Za-z0-9_-]{43})</code>')


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str
    set_cookies: list[str]

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def csrf(self, index: int = 0) -> str:
        found: list[str] = CSRF_RE.findall(self.text)
        return found[index]

    def cookie_attributes(self, name: str) -> str:
        """The raw Set-Cookie line for `name` ('' if not set)."""
        return next((c for c in self.set_cookies if c.startswith(name + "=")), "")


class Browser:
    """Keeps cookies (IP hosts included), never follows redirects on its own."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.jar = aiohttp.CookieJar(unsafe=True)
        self.http = aiohttp.ClientSession(
            cookie_jar=self.jar, timeout=aiohttp.ClientTimeout(total=30)
        )

    async def close(self) -> None:
        await self.http.close()

    def _url(self, target: str) -> str:
        return target if target.startswith(("http://", "https://")) else self.gateway.url(target)

    async def request(self, method: str, target: str, **kwargs: Any) -> Reply:
        kwargs.setdefault("allow_redirects", False)
        async with self.http.request(method, self._url(target), **kwargs) as r:
            text = await r.text()
            return Reply(
                r.status,
                {k: v for k, v in r.headers.items()},
                text,
                r.headers.getall("Set-Cookie", []),
            )

    async def get(self, target: str, **kwargs: Any) -> Reply:
        return await self.request("GET", target, **kwargs)

    async def post(self, target: str, data: dict[str, str], **kwargs: Any) -> Reply:
        return await self.request("POST", target, data=data, **kwargs)

    def cookie(self, name: str) -> str | None:
        for morsel in self.jar:
            if morsel.key == name:
                return morsel.value
        return None

    def set_cookie(self, name: str, value: str, path: str = "/") -> None:
        cookie: SimpleCookie = SimpleCookie()
        cookie[name] = value
        cookie[name]["path"] = path
        self.jar.update_cookies(cookie, URL(self.gateway.base_url))

    async def start_oidc(self, next_path: str = "/account") -> str:
        """Start a login; the provider (which logs in at once) sends back a callback URL."""
        start = await self.get("/auth/oidc?" + urlencode({"next": next_path}))
        assert start.status == 302, start.text
        at_idp = await self.get(start.location)
        assert at_idp.status == 302, at_idp.text
        assert urlsplit(at_idp.location).path == "/auth/callback"
        return at_idp.location

    async def oidc_login(self, next_path: str = "/account") -> Reply:
        return await self.get(await self.start_oidc(next_path))

    async def account(self) -> Reply:
        return await self.get("/account")


def session_rows(gateway: Gateway) -> list[dict[str, Any]]:
    db = sqlite3.connect(gateway.config.db_path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM sessions ORDER BY id")]
    finally:
        db.close()


def execute(gateway: Gateway, sql: str, *params: Any) -> None:
    db = sqlite3.connect(gateway.config.db_path)
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


@contextlib.asynccontextmanager
async def browser_gateway(
    tmp: Path, upstream_url: str, *, oidc: dict[str, Any] | None = None, **overrides: Any
) -> AsyncIterator[tuple[Gateway, FakeIdp]]:
    """The gateway with the fake provider configured (`oidc` adds to its section)."""
    async with running_idp() as idp:
        port = free_port()
        section = idp.settings(f"http://127.0.0.1:{port}/auth/callback", **(oidc or {}))
        async with running_gateway(tmp, upstream_url, port=port, oidc=section, **overrides) as gw:
            yield gw, idp


@contextlib.asynccontextmanager
async def browser(gateway: Gateway) -> AsyncIterator[Browser]:
    b = Browser(gateway)
    try:
        yield b
    finally:
        await b.close()


@contextlib.asynccontextmanager
async def signed_in(gateway: Gateway) -> AsyncIterator[Browser]:
    """A browser that has just signed in through the provider (as whoever it names)."""
    async with browser(gateway) as b:
        assert (await b.oidc_login()).status == 303
        yield b
