"""``/auth/login`` (the sign-in page and the password form) and ``/auth/logout``.

The OIDC half of the login (``/auth/oidc``, ``/auth/callback``) is in ``oidc_pages``.
"""

from __future__ import annotations

from aiohttp import web

from authproxy import appkeys as K
from authproxy.auth.csrf import FIELD
from authproxy.login.context import BrowserAuth, audit, read_form, safe_next
from authproxy.login.html import Safe, esc, message_page, page, redirect, render
from authproxy.store.base import NotFoundError
from authproxy.store.contracts import LoginStore

__all__ = [
    "LOGIN_PURPOSE",
    "LOGOUT_PURPOSE",
    "MAX_NAME",
    "get_login",
    "login_page",
    "post_login",
    "post_logout",
]

LOGIN_PURPOSE = "login"
LOGOUT_PURPOSE = "logout"
MAX_NAME = 128


def _notice(text: str | None, kind: str = "error") -> Safe:
    if not text:
        return Safe("")
    return Safe(f'<div class="notice {kind}" role="alert">{esc(text)}</div>')


def login_page(
    request: web.Request,
    *,
    next_path: str,
    error: str | None = None,
    info: str | None = None,
    username: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    browser = request.app[K.BROWSER]
    if browser.oidc is None and not browser.password_login:
        return message_page(
            "Sign-in is not set up",
            "This gateway has no OIDC provider and password login is off; use an API key.",
            status=404,
            link="/healthz",
        )
    binding = browser.login_value(request)
    provider = separator = form = Safe("")
    if browser.oidc is not None:
        provider = render(
            "login_provider.html", next=next_path, label=browser.oidc.settings.button_label
        )
    if browser.password_login:
        form = render(
            "login_password.html",
            csrf=browser.csrf.token(binding, LOGIN_PURPOSE),
            next=next_path,
            username=username,
        )
    if browser.oidc is not None and browser.password_login:
        separator = Safe('<div class="or">or</div>')
    body = render(
        "login.html",
        notice=_notice(error) if error else _notice(info, "ok"),
        provider=provider,
        separator=separator,
        password_form=form,
    )
    response = page(title="Sign in", body=body, status=status, headers=headers)
    browser.set_login_cookie(request, response, binding)
    return response


async def get_login(request: web.Request) -> web.Response:
    browser = request.app[K.BROWSER]
    next_path = safe_next(request.query.get("next"))
    token = browser.sessions.token(request)
    if token is not None and await browser.sessions.live(token) is not None:
        return redirect(next_path)
    info = "You are signed out." if "signed_out" in request.query else None
    return login_page(request, next_path=next_path, info=info)


async def post_login(request: web.Request) -> web.Response:
    """The password form: CSRF, rate limits, argon2id off the loop, then a fresh session."""
    browser: BrowserAuth = request.app[K.BROWSER]
    if not browser.password_login:
        return message_page("Password login is off", "Use single sign-on.", status=404)
    form = await read_form(request)
    next_path = safe_next(form.get("next"))
    if not browser.csrf.check(browser.login_binding(request), LOGIN_PURPOSE, form.get(FIELD)):
        audit(request, "anonymous", "auth.failed", None, "reason=csrf via=password")
        return login_page(
            request,
            next_path=next_path,
            error="The sign-in form expired. Please try again.",
            status=403,
        )
    name = form.get("username")
    password = form.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name.strip():
        return login_page(request, next_path=next_path, error="Enter user name and password.")
    name = name.strip()[:MAX_NAME]
    client = request[K.CLIENT]
    attempt = browser.limiter.begin(client, name)  # counted before anything is awaited
    if attempt.wait:
        return login_page(
            request,
            next_path=next_path,
            username=name,
            error=f"Too many failed attempts. Try again in {attempt.wait} seconds.",
            status=429,
            headers={"Retry-After": str(attempt.wait)},
        )
    store: LoginStore = request.app[K.STORE]
    try:
        user, stored = await store.password_hash(name)
    except NotFoundError:
        user, stored = None, None
    verdict = await browser.passwords.verify(stored, password)
    if user is None or not verdict.ok:
        browser.limiter.failed(attempt)
        audit(request, "anonymous", "auth.failed", name, "reason=bad_password via=password")
        return login_page(
            request,
            next_path=next_path,
            username=name,
            error="Wrong user name or password.",
            status=401,
        )
    if user.disabled:
        browser.limiter.release(attempt)
        audit(request, user.name, "auth.failed", user.name, "reason=user_disabled via=password")
        return login_page(
            request, next_path=next_path, error="This account is disabled.", status=403
        )
    browser.limiter.succeeded(attempt)
    if verdict.new_hash is not None:
        await store.set_password_hash(user.name, verdict.new_hash)
    response = redirect(next_path)
    await browser.sessions.start(request, response, user=user, via="password")
    browser.clear_login_cookie(request, response)
    audit(request, user.name, "session.login", user.name, "via=password")
    return response


async def post_logout(request: web.Request) -> web.Response:
    """End the session at once (the row is deleted) and clear the cookie."""
    browser = request.app[K.BROWSER]
    token = browser.sessions.token(request)
    form = await read_form(request)
    record = await browser.sessions.live(token) if token is not None else None
    if record is not None and not browser.csrf.check(token, LOGOUT_PURPOSE, form.get(FIELD)):
        return message_page(
            "Sign-out refused",
            "The sign-out form was not sent by this gateway's account page.",
            status=403,
            link="/account",
        )
    response = redirect("/auth/login?signed_out=1")
    await browser.sessions.end(request, response)
    if record is not None:
        audit(request, record.user_name, "session.logout", record.user_name, f"via={record.via}")
    return response
