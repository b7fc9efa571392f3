"""``/auth/oidc`` starts an authorization code flow; ``/auth/callback`` finishes it.

Start: fresh ``state``, ``nonce`` and PKCE verifier; the store keeps them under the state's
digest together with the digest of the browser's login cookie, and the browser goes to the
provider. Callback: the flow is taken out of the store (so a state, and with it a code, works
once), must belong to this browser and be under ten minutes old; then the code is exchanged,
the ID token checked (signature, iss, aud, exp, iat, nonce), userinfo merged, the user found or
created (or refused), and a fresh session begins.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from aiohttp import web

from authproxy import appkeys as K
from authproxy.auth.sessions import LOGIN_FLOW_TTL, digest
from authproxy.clock import now
from authproxy.login.context import BrowserAuth, audit, safe_next
from authproxy.login.html import message_page, redirect
from authproxy.oidc.client import OidcClient, OidcError
from authproxy.oidc.users import LoginRefused
from authproxy.store.records import LoginFlow

__all__ = ["callback", "start"]


def _refused(request: web.Request, reason: str, text: str, status: int = 400) -> web.Response:
    audit(request, "anonymous", "auth.failed", None, f"reason={reason} via=oidc")
    return message_page("Sign-in failed", text, status=status)


async def start(request: web.Request) -> web.Response:
    browser: BrowserAuth = request.app[K.BROWSER]
    if browser.oidc is None:
        return message_page("Single sign-on is off", "Use the password form.", status=404)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(48)  # 64 characters: within PKCE's 43..128
    binding = browser.login_value(request)
    try:
        url = await browser.oidc.authorization_url(state=state, nonce=nonce, code_verifier=verifier)
    except OidcError as exc:
        return message_page("Identity provider unavailable", str(exc), status=502)
    flow = LoginFlow(
        browser_hash=digest(binding),
        nonce=nonce,
        code_verifier=verifier,
        next_path=safe_next(request.query.get("next")),
        created_at=now(),
    )
    await request.app[K.STORE].put_login_flow(digest(state), flow)
    response = redirect(url, status=302)
    browser.set_login_cookie(request, response, binding)
    return response


async def _claims(oidc: OidcClient, code: str, flow: LoginFlow) -> dict[str, Any]:
    tokens = await oidc.exchange_code(code, flow.code_verifier)
    claims = await oidc.id_token_claims(tokens, nonce=flow.nonce)
    access_token = tokens.get("access_token")
    if isinstance(access_token, str):
        info = await oidc.userinfo(access_token, str(claims["sub"]))
        claims = {**info, **claims}  # the verified ID token wins where both say something
    return claims


async def callback(request: web.Request) -> web.Response:
    browser: BrowserAuth = request.app[K.BROWSER]
    oidc, users = browser.oidc, browser.oidc_users
    if oidc is None or users is None:
        return message_page("Single sign-on is off", "Use the password form.", status=404)
    query = request.query
    state = query.get("state", "")
    flow = await request.app[K.STORE].take_login_flow(digest(state)) if state else None
    if "error" in query:
        error = query.get("error", "")[:100]
        return _refused(request, "provider_error", f"The identity provider said: {error}.")
    if flow is None:
        return _refused(
            request,
            "unknown_state",
            "This sign-in link is unknown, was used already, or has expired. Start again.",
        )
    binding = browser.login_binding(request)
    if binding is None or not hmac.compare_digest(digest(binding), flow.browser_hash):
        return _refused(
            request, "other_browser", "This sign-in was started in another browser. Start again."
        )
    if now() - flow.created_at > LOGIN_FLOW_TTL:
        return _refused(request, "flow_expired", "This sign-in took too long. Start again.")
    iss = query.get("iss")
    if iss is not None and iss != oidc.settings.issuer:  # RFC 9207 mix-up defence
        return _refused(request, "wrong_issuer", "The answer came from another issuer.")
    code = query.get("code")
    if not code:
        return _refused(request, "no_code", "The identity provider sent no code.")
    try:
        claims = await _claims(oidc, code, flow)
    except OidcError as exc:
        return _refused(request, "token_refused", str(exc))
    try:
        user = await users.user_for(claims, source=request[K.CLIENT])
    except LoginRefused as exc:
        audit(request, "anonymous", "auth.failed", None, f"reason={exc.reason} via=oidc")
        return message_page("Sign-in refused", str(exc), status=403)
    response = redirect(flow.next_path)
    await browser.sessions.start(request, response, user=user, via="oidc")
    browser.clear_login_cookie(request, response)
    audit(request, user.name, "session.login", user.name, "via=oidc")
    return response
