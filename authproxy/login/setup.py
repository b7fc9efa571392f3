"""Wiring for browser login: sessions, CSRF, passwords, the OIDC client (their routes are in
the URL table, ``web/routes.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from authproxy import appkeys as K
from authproxy.auth.authenticate import Authenticator
from authproxy.auth.csrf import CsrfTokens
from authproxy.auth.sessions import SessionAuthenticator, SessionManager
from authproxy.login.context import BrowserAuth
from authproxy.login.limiter import LoginLimiter
from authproxy.login.passwords import PasswordVerifier
from authproxy.oidc.bearer import JwtAuthenticator
from authproxy.oidc.client import OidcClient
from authproxy.oidc.users import OidcUsers

__all__ = ["browser_ctx"]


async def browser_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the store: add the session (and optional IdP JWT) authenticators to the chain."""
    config = app[K.CONFIG]
    services = app[K.SERVICES]
    store = services.store
    sessions = SessionManager(
        store=store, settings=config.sessions, client_address=app[K.CLIENT_ADDRESS]
    )
    chain: list[Authenticator] = [*app[K.AUTHENTICATORS], SessionAuthenticator(sessions)]
    async with aiohttp.ClientSession(trust_env=True) as http:
        oidc = users = None
        if config.oidc is not None:
            oidc = OidcClient(settings=config.oidc, session=http)
            users = OidcUsers(services=services)
            if config.oidc.accept_bearer_tokens:
                chain.append(JwtAuthenticator(oidc=oidc, users=users))
        app[K.BROWSER] = BrowserAuth(
            sessions=sessions,
            csrf=CsrfTokens(secret=services.secret.subkey("csrf")),
            limiter=LoginLimiter(config.password_login),
            passwords=PasswordVerifier(),
            password_login=config.password_login.enabled,
            oidc=oidc,
            oidc_users=users,
        )
        app[K.AUTHENTICATORS] = tuple(chain)
        yield
