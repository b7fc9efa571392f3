"""``/account``: who I am, my usage against my quotas, my keys; create and revoke keys.

Only a browser session reaches these handlers (the middleware sends everyone else to the
sign-in page); every form carries the session's CSRF token. Keys are made and revoked through
the ``AdminService``, so each action is audited with the user as actor and their address.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from authproxy import appkeys as K
from authproxy.admin.service import AdminError, AdminService
from authproxy.auth.csrf import FIELD
from authproxy.auth.sessions import BrowserSession
from authproxy.clock import now
from authproxy.limits.quota import Limits
from authproxy.login.context import audit, read_form
from authproxy.login.html import EMPTY, Safe, esc, join, message_page, page, redirect, render
from authproxy.store.records import ApiKey
from authproxy.text import parse_duration, whole_number

__all__ = [
    "EXPIRY_CHOICES",
    "LOGIN",
    "MAX_ACTIVE_KEYS",
    "PURPOSE",
    "create_key",
    "home",
    "revoke_key",
    "show",
]

PURPOSE = "account"
EXPIRY_CHOICES = frozenset({"", "7d", "30d", "90d", "365d"})
MAX_ACTIVE_KEYS = 20
LOGIN = "/auth/login?next=/account"


def _admin(request: web.Request, session: BrowserSession) -> AdminService:
    return request.app[K.SERVICES].admin(
        actor=f"web:{session.record.user_name}", source=request[K.CLIENT]
    )


def _when(request: web.Request, ts: float | None) -> str:
    if ts is None:
        return "never"
    zone = ZoneInfo(request.app[K.CONFIG].quotas.timezone)
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M %Z")


def _meter(name: str, used: int, limit: int | None) -> Safe:
    if limit is None:
        return render(
            "account_meter.html", name=name, text=f"{used:,} tokens (no limit)", bar=EMPTY
        )
    percent = min(100, round(100 * used / limit)) if limit else 100
    bar = Safe(
        f'<progress class="{"full" if percent >= 100 else ""}" max="100" value="{percent}">'
        f"{percent}%</progress>"
    )
    return render("account_meter.html", name=name, text=f"{used:,} / {limit:,} tokens", bar=bar)


def _limits_line(limits: Limits) -> str:
    def shown(value: int | None) -> str:
        return "no limit" if value is None else f"{value:,}"

    return (
        f"Requests a minute: {shown(limits.requests_per_minute)} · "
        f"at once: {shown(limits.max_concurrent)}"
    )


def _key_item(request: web.Request, key: ApiKey, csrf: str) -> Safe:
    expired = key.expires_at is not None and key.expires_at <= now()
    if key.expires_at is None:
        expiry = Safe("never expires")
    elif expired:
        expiry = Safe(
            f'<span class="status-expired">expired {esc(_when(request, key.expires_at))}</span>'
        )
    else:
        expiry = esc(f"expires {_when(request, key.expires_at)}")
    return render(
        "account_key.html",
        label=key.label or "(no label)",
        prefix=key.prefix,
        created=_when(request, key.created_at),
        last_used=_when(request, key.last_used_at),
        expiry=expiry,
        csrf=csrf,
        key_id=key.id,
    )


def _models(request: web.Request, role: str) -> list[str]:
    policy, catalog = request.app[K.POLICY], request.app[K.CATALOG]
    return [m for m in catalog.enabled_models() if policy.may_use(role, m)]


def _base_url(request: web.Request) -> str:
    tls = request.app[K.CLIENT_ADDRESS].came_over_tls(request)
    return f"{'https' if tls else 'http'}://{request.host}/v1"


def _new_key_box(request: web.Request, secret: str, key: ApiKey, models: list[str]) -> Safe:
    base_url = _base_url(request)
    opencode = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "authproxy": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "authproxy",
                "options": {"baseURL": "{env:OPENAI_BASE_URL}", "apiKey": "{env:OPENAI_API_KEY}"},
                "models": {m: {} for m in models} or {"MODEL": {}},
            }
        },
    }
    return render(
        "account_newkey.html",
        key=secret,
        prefix=key.prefix,
        label=key.label or "no label",
        base_url=base_url,
        opencode=json.dumps(opencode, indent=2),
        model=models[0] if models else "MODEL",
    )


async def _render(
    request: web.Request,
    session: BrowserSession,
    *,
    new_key: Safe = EMPTY,
    notice: Safe = EMPTY,
    status: int = 200,
) -> web.Response:
    browser = request.app[K.BROWSER]
    record = session.record
    # The quota book's own counters: what this gateway enforces, without a query over usage.
    quotas = request.app[K.QUOTAS]
    limits = quotas.limits(request[K.PRINCIPAL])
    today, month = await quotas.used(record.user_id)
    admin = _admin(request, session)
    keys = [k for k in await admin.list_keys(record.user_name) if k.revoked_at is None]
    csrf = browser.csrf.token(session.token, PURPOSE)
    items = [_key_item(request, k, csrf) for k in reversed(keys)]
    key_list = (
        Safe(f'<ul class="keys">{join(items)}</ul>')
        if items
        else Safe('<p class="muted">No keys yet. Create one below.</p>')
    )
    models = _models(request, record.role)
    body = render(
        "account.html",
        user=record.user_name,
        role=record.role,
        signout=browser.signout_form(session),
        notice=notice,
        newkey=new_key,
        meters=join(
            [
                _meter("Today", today, limits.tokens_per_day),
                _meter("This month", month, limits.tokens_per_month),
            ]
        ),
        limits=_limits_line(limits),
        models=", ".join(models) or "none right now",
        keys=key_list,
        create_csrf=csrf,
    )
    return page(title="Your account", body=body, status=status)


def _session(request: web.Request) -> BrowserSession | None:
    return request.get(K.BROWSER_SESSION)


async def home(request: web.Request) -> web.Response:
    """``/``: a signed-in browser's home is its account page."""
    return redirect("/account")


async def show(request: web.Request) -> web.Response:
    session = _session(request)
    if session is None:
        return redirect(LOGIN)
    notice = Safe("")
    if request.query.get("done") == "revoked":
        notice = Safe('<div class="notice ok" role="status">Key revoked.</div>')
    return await _render(request, session, notice=notice)


async def _checked_form(request: web.Request, session: BrowserSession) -> dict[str, str] | None:
    form = await read_form(request)
    browser = request.app[K.BROWSER]
    if not browser.csrf.check(session.token, PURPOSE, form.get(FIELD)):
        audit(request, session.record.user_name, "auth.failed", None, "reason=csrf via=account")
        return None
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _signed_in_form(
    request: web.Request,
) -> tuple[BrowserSession, dict[str, str]] | web.Response:
    """The session and its CSRF-checked form, or the answer to give instead."""
    session = _session(request)
    if session is None:
        return redirect(LOGIN)
    form = await _checked_form(request, session)
    if form is None:
        return message_page(
            "Form refused",
            "The form was not sent by your account page.",
            status=403,
            link="/account",
        )
    return session, form


async def create_key(request: web.Request) -> web.Response:
    checked = await _signed_in_form(request)
    if isinstance(checked, web.Response):
        return checked
    session, form = checked
    label = " ".join(form.get("label", "").split())[:64] or None
    expires = form.get("expires", "")
    if expires not in EXPIRY_CHOICES:
        return message_page("Form refused", "Unknown expiry.", status=400, link="/account")
    admin = _admin(request, session)
    try:
        new = await admin.create_key(
            session.record.user_name,
            label=label,
            expires_in=parse_duration(expires) if expires else None,
            max_active=MAX_ACTIVE_KEYS,  # checked in the store's write transaction
        )
    except AdminError as exc:
        notice = Safe(f'<div class="notice error" role="alert">{esc(str(exc))}</div>')
        return await _render(request, session, notice=notice, status=409)
    await request.app[K.WATCH].check()  # usable the moment it is shown
    box = _new_key_box(request, new.secret, new.record, _models(request, session.record.role))
    return await _render(request, session, new_key=box, status=201)


async def revoke_key(request: web.Request) -> web.Response:
    checked = await _signed_in_form(request)
    if isinstance(checked, web.Response):
        return checked
    session, form = checked
    key_id = whole_number(form.get("key_id"))
    admin = _admin(request, session)
    mine = {k.id for k in await admin.list_keys(session.record.user_name)}
    if key_id is None or key_id not in mine:
        return message_page("No such key", "That key is not yours.", status=404, link="/account")
    with contextlib.suppress(AdminError):  # revoked already (another tab): what was wanted
        await admin.revoke_key(key_id)
    await request.app[K.WATCH].check()  # refused from the next request on
    return redirect("/account?done=revoked")
