"""Browser sessions: server-side rows, a random id in an HttpOnly cookie, stored only hashed.

A fresh id is made at every login (any session the browser brought along is ended first, so an
id planted before login is worth nothing). A session ends ``idle_timeout`` after its last use
or ``absolute_timeout`` after login, whichever comes first; logout and an admin's revoke delete
the row, so the very next request is refused. The cookie is ``Secure`` whenever the request
came over TLS (directly or through a trusted proxy) and ``SameSite=Lax``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from authproxy import appkeys as K
from authproxy.auth.client_address import ClientAddress
from authproxy.auth.principal import Principal
from authproxy.clock import now
from authproxy.config.login import Sessions as Settings
from authproxy.errors import AuthenticationFailed
from authproxy.store.contracts import LoginStore
from authproxy.store.records import Session, User

__all__ = [
    "LOGIN_FLOW_TTL",
    "PURGE_EVERY",
    "TOUCH_EVERY",
    "BrowserSession",
    "SessionAuthenticator",
    "SessionManager",
    "digest",
]

TOUCH_EVERY = 60.0  # seconds: last use is written at most this often (idle expiry's precision)
PURGE_EVERY = 600.0
LOGIN_FLOW_TTL = 600.0  # an OIDC login must come back within ten minutes


def digest(token: str) -> bytes:
    """What the store keeps of a session id or a state: 256 random bits need no slow hash."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class BrowserSession:
    record: Session
    token: str  # the cookie value: the CSRF tokens of this session are derived from it


class SessionManager:
    def __init__(
        self, *, store: LoginStore, settings: Settings, client_address: ClientAddress
    ) -> None:
        self._store = store
        self.settings = settings
        self._client_address = client_address
        self._purged_at = 0.0

    @property
    def cookie_name(self) -> str:
        return self.settings.cookie_name

    def token(self, request: web.Request) -> str | None:
        value = request.cookies.get(self.cookie_name)
        return value if value and value.isascii() else None  # ours are base64url

    async def live(self, token: str) -> Session | None:
        """The live session for this cookie value, or None (unknown, ended, expired, disabled)."""
        if len(token) > 128:
            return None
        record = await self._store.find_session(digest(token))
        if record is None:
            return None
        t = now()
        if record.expires_at <= t or record.last_seen_at + self.settings.idle_timeout <= t:
            await self._store.delete_session(digest(token))
            return None
        if record.user_disabled:  # ended for good: enabling the user again does not revive it
            await self._store.delete_session(digest(token))
            return None
        if t - record.last_seen_at >= TOUCH_EVERY:
            await self._store.touch_session(record.id, t)
        return record

    def _set_cookie(self, request: web.Request, response: web.StreamResponse, value: str) -> None:
        response.set_cookie(
            self.cookie_name,
            value,
            path="/",
            max_age=int(self.settings.absolute_timeout),
            httponly=True,
            samesite="Lax",
            secure=self._client_address.came_over_tls(request),
        )

    def clear_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        response.del_cookie(
            self.cookie_name,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self._client_address.came_over_tls(request),
        )

    async def start(
        self, request: web.Request, response: web.StreamResponse, *, user: User, via: str
    ) -> None:
        """Log ``user`` in: end whatever session the browser had, make a new one, set it."""
        old = self.token(request)
        if old is not None:
            await self._store.delete_session(digest(old))
        token = secrets.token_urlsafe(32)
        await self._store.create_session(
            id_hash=digest(token),
            user_id=user.id,
            via=via,
            expires_at=now() + self.settings.absolute_timeout,
            source=self._client_address.of(request),
            user_agent=request.headers.get("User-Agent", "")[:200] or None,
        )
        self._set_cookie(request, response, token)
        await self._purge_now_and_then()

    async def end(self, request: web.Request, response: web.StreamResponse) -> bool:
        """Log out: delete the row (refused from the next request on), clear the cookie."""
        token = self.token(request)
        self.clear_cookie(request, response)
        if token is None:
            return False
        return await self._store.delete_session(digest(token))

    async def _purge_now_and_then(self) -> None:
        mono = time.monotonic()
        if mono - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = mono
        await self._store.purge_sessions(idle_before=now() - self.settings.idle_timeout)
        await self._store.purge_login_flows(before=now() - LOGIN_FLOW_TTL)


class SessionAuthenticator:
    """The session cookie as a credential: same principal as a key, ``via="session"``."""

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager

    async def authenticate(self, request: web.Request) -> Principal | None:
        token = self._manager.token(request)
        if token is None:
            return None
        record = await self._manager.live(token)
        if record is None:
            raise AuthenticationFailed(
                "your browser session has ended; sign in again at /auth/login",
                code="session_expired",
            )
        request[K.BROWSER_SESSION] = BrowserSession(record, token)
        return Principal(
            user_id=record.user_id,
            user_name=record.user_name,
            role=record.role,
            key_id=None,
            via="session",
        )
