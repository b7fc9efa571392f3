"""What the browser-facing routes share: sessions, CSRF tokens, the login cookie, OIDC parts.

The *login cookie* is a short-lived random value (path ``/auth``, ten minutes) that a browser
gets when it opens the sign-in page or starts an OIDC login. The password form's CSRF token is
derived from it, and an OIDC login is bound to it: the callback is accepted only from the
browser that started that login, so nobody can finish their own login in someone else's browser.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from authproxy import appkeys as K
from authproxy.auth.csrf import CsrfTokens
from authproxy.auth.sessions import LOGIN_FLOW_TTL, BrowserSession, SessionManager
from authproxy.clock import now
from authproxy.errors import BadRequest, RequestTimeout
from authproxy.login.html import Safe, render
from authproxy.login.limiter import LoginLimiter
from authproxy.login.passwords import PasswordVerifier
from authproxy.oidc.client import OidcClient
from authproxy.oidc.users import OidcUsers
from authproxy.store.records import AuditEntry

__all__ = ["DEFAULT_NEXT", "BrowserAuth", "audit", "plain_token", "read_form", "safe_next"]

DEFAULT_NEXT = "/account"


@dataclass(frozen=True, slots=True)
class BrowserAuth:
    sessions: SessionManager
    csrf: CsrfTokens
    limiter: LoginLimiter
    passwords: PasswordVerifier
    password_login: bool
    oidc: OidcClient | None
    oidc_users: OidcUsers | None

    @property
    def login_cookie(self) -> str:
        return self.sessions.cookie_name + "_login"

    def login_binding(self, request: web.Request) -> str | None:
        return plain_token(request.cookies.get(self.login_cookie))

    def login_value(self, request: web.Request) -> str:
        """The browser's login cookie value, or a new one (then set it on the response)."""
        return self.login_binding(request) or secrets.token_urlsafe(32)

    def set_login_cookie(
        self, request: web.Request, response: web.StreamResponse, value: str
    ) -> None:
        response.set_cookie(
            self.login_cookie,
            value,
            path="/auth",
            max_age=int(LOGIN_FLOW_TTL),
            httponly=True,
            samesite="Lax",
            secure=request.app[K.CLIENT_ADDRESS].came_over_tls(request),
        )

    def clear_login_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        response.del_cookie(self.login_cookie, path="/auth")

    def signout_form(self, session: BrowserSession) -> Safe:
        """A signed-in page's sign-out button; its CSRF token is bound to the session."""
        return render("signout.html", csrf=self.csrf.token(session.token, "logout"))


# A path and query of printable URL characters (RFC 3986 unreserved, sub-delims, ":@/?%"):
# no control character, space, backslash or non-ASCII, which a Location header cannot carry
# (aiohttp drops the connection on a control character) or browsers read in their own ways.
_NEXT_RE = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@/?%-]{0,511}")


def safe_next(value: object) -> str:
    """Where to go after login: a path on this gateway, never another site.

    Anything else is replaced by the account page. The percent-decoded form is held to the
    same rules, for whatever decodes it later.
    """
    if not isinstance(value, str) or not _NEXT_RE.fullmatch(value):
        return DEFAULT_NEXT
    for form in (value, unquote(value)):
        if form.startswith(("//", "/\\")) or "://" in form or form.startswith("/auth/"):
            return DEFAULT_NEXT
        if "\\" in form or any(c.isspace() or not c.isprintable() for c in form):
            return DEFAULT_NEXT
    return value


def plain_token(value: str | None) -> str | None:
    """A cookie value as this gateway makes them (ASCII, at most 128 characters), else None."""
    return value if value and len(value) <= 128 and value.isascii() else None


async def read_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """The posted form; one that cannot be parsed is a 400, not an unhandled error."""
    try:
        async with asyncio.timeout(request.app[K.CONFIG].timeouts.client_body):
            return await request.post()
    except (ValueError, LookupError, HttpProcessingError):  # bad bytes, charset, multipart
        raise BadRequest("the form could not be read", code="invalid_form") from None
    except TimeoutError:  # a form is small: all of it within one pause (see proxy/client_body)
        raise RequestTimeout("the form stopped arriving", code="request_body_timeout") from None


def audit(request: web.Request, actor: str, action: str, target: str | None, detail: str) -> None:
    """One audit row through the batched writer (a login must not wait on the disk)."""
    request.app[K.USAGE].audit(
        AuditEntry(now(), actor, action, target, detail, request.get(K.CLIENT))
    )
