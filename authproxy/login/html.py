"""Server-rendered pages: ``string.Template`` files under ``authproxy/login/templates``, every
value HTML-escaped unless it is ``Safe`` (a fragment built here from escaped parts).

Pages are sent with a strict Content-Security-Policy (nothing but this response's own inline
style and script, by nonce; the stylesheet and script are package files put inline, so there
is no build step and nothing to fetch), no caching, no referrer (the callback URL carries a
code, the account page a fresh key) and no framing. A page whose script calls the API (the chat
page) may also connect to this origin, and nowhere else.
"""

from __future__ import annotations

import html
import secrets
from functools import cache
from importlib import resources
from string import Template

from aiohttp import web

__all__ = ["EMPTY", "Safe", "esc", "join", "message_page", "page", "redirect", "render"]


class Safe(str):
    """Markup that is already escaped."""

    __slots__ = ()


EMPTY = Safe("")


def esc(value: object) -> Safe:
    if isinstance(value, Safe):
        return value
    return Safe(html.escape("" if value is None else str(value), quote=True))


def join(parts: list[Safe] | tuple[Safe, ...]) -> Safe:
    return Safe("".join(parts))


@cache
def _template(name: str) -> Template:
    text = (
        resources.files("authproxy.login").joinpath("templates", name).read_text(encoding="utf-8")
    )
    return Template(text)


def render(template: str, /, **values: object) -> Safe:
    """Fill a template; a missing value is an error, never an empty hole."""
    return Safe(_template(template).substitute({k: esc(v) for k, v in values.items()}))


def _asset(name: str) -> str:
    """A stylesheet or script file as it is (never a template: ``$`` means nothing in it)."""
    text = _template(name).template
    if "</" in text and name.endswith(".js"):  # it goes inside <script>: nothing may close it
        raise ValueError(f"{name} must not contain '</'")
    return text


def page(
    *,
    title: str,
    body: Safe,
    status: int = 200,
    headers: dict[str, str] | None = None,
    stylesheet: str | None = None,
    script: str = "copy.js",
    calls_api: bool = False,
) -> web.Response:
    """A whole page: ``style.css`` (and ``stylesheet``, if named) and ``script`` inline, by
    nonce; ``calls_api``: its script may fetch from this origin."""
    nonce = secrets.token_urlsafe(16)
    style = _asset("style.css") + (_asset(stylesheet) if stylesheet else "")
    document = render(
        "base.html",
        title=title,
        nonce=nonce,
        style=Safe(style),
        script=Safe(_asset(script)),
        body=body,
    )
    connect = " connect-src 'self';" if calls_api else ""
    csp = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}';{connect}"
        " img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return web.Response(
        text=document,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": csp,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
    )


def message_page(title: str, text: str, *, status: int, link: str = "/auth/login") -> web.Response:
    """A small page for a refusal a person sees in the browser (a bad login, a stale form)."""
    body = render("message.html", title=title, text=text, link=link)
    return page(title=title, body=body, status=status)


def redirect(location: str, *, status: int = 303) -> web.Response:
    return web.Response(status=status, headers={"Location": location, "Cache-Control": "no-store"})
