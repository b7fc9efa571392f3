"""``/chat``: a lean chat page for signed-in people.

Server-rendered, with a small script of our own (``templates/chat.js``, put inline by nonce
like every page's: no build step, nothing fetched from anywhere). The script calls the same API
as any tool — ``GET /v1/models`` (the models this person may use) and a streamed
``POST /v1/chat/completions`` — with the session cookie, so quotas, accounting and the audit are
the same as for a key, and the cookie's same-origin check applies (``auth/csrf.py``: the
browser sends ``Origin`` on the POST). The page's CSP adds ``connect-src 'self'`` and nothing
else. Conversations stay in the browser (``localStorage``, a store per user); the gateway keeps
no chat history.
"""

from __future__ import annotations

from aiohttp import web

from authproxy import appkeys as K
from authproxy.login.html import page, redirect, render

__all__ = ["PATH", "show"]

PATH = "/chat"


async def show(request: web.Request) -> web.Response:
    session = request.get(K.BROWSER_SESSION)
    if session is None:  # a key on a page: the page is for browsers
        return redirect(f"/auth/login?next={PATH}")
    browser = request.app[K.BROWSER]
    body = render(
        "chat.html",
        user=session.record.user_name,
        user_id=session.record.user_id,
        signout=browser.signout_form(session),
    )
    return page(title="Chat", body=body, stylesheet="chat.css", script="chat.js", calls_api=True)
