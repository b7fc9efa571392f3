"""The chat page as the gateway serves it: only for a browser session, a strict CSP that lets
its own script call this origin and nothing else, and the API it calls holding the session
cookie to this origin. (What the script does is tried in a real browser: tests/e2e.)"""

from __future__ import annotations

import re

from fakes.engine import FakeEngine

from authproxy.login.html import page
from authproxy.login.html import render as render_template
from authproxy.store.records import UsageRow

from .browser import Browser, browser
from .fake_idp import FakeIdp
from .helpers import CHAT, MODELS, Gateway, bearer, chat_body

NONCE_RE = re.compile(r"script-src 'nonce-([A-Za-z0-9_-]+)'")


async def test_the_chat_page_is_for_a_signed_in_browser(sso: tuple[Gateway, FakeIdp]) -> None:
    gw, _ = sso
    async with browser(gw) as anonymous:
        reply = await anonymous.get("/chat")
        assert (reply.status, reply.location) == (303, "/auth/login?next=/chat")
        keyed = await anonymous.get("/chat", headers=bearer(gw.accounts.user_key))
        assert keyed.status == 303 and keyed.location.startswith("/auth/login")


async def test_its_policy_lets_its_own_script_call_this_origin_only(web: Browser) -> None:
    reply = await web.get("/chat")
    assert reply.status == 200
    csp = reply.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    nonce = NONCE_RE.search(csp)
    assert nonce is not None
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert directives["script-src"] == f"'nonce-{nonce.group(1)}'"  # no 'unsafe-inline', no host
    assert directives["frame-ancestors"] == "'none'"
    assert reply.headers["Cache-Control"] == "no-store"
    scripts = re.findall(r"<script([^>]*)>", reply.text)
    assert scripts == [f' nonce="{nonce.group(1)}"']  # one script, ours, by nonce
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", reply.text)  # no inline handler (onclick=…)
    assert 'id="chat"' in reply.text and 'href="/account"' in reply.text
    account = await web.account()
    assert 'href="/chat"' in account.text
    assert "connect-src" not in account.headers["Content-Security-Policy"]  # the key page: none


async def test_the_page_escapes_the_user_name() -> None:
    body = render_template("chat.html", user="<b>eve</b>", user_id=7, signout="")
    html = page(title="Chat", body=body, script="chat.js", calls_api=True).text
    assert html is not None
    assert "&lt;b&gt;eve&lt;/b&gt;" in html and "<b>eve</b>" not in html


async def test_the_session_cookie_calls_the_api_from_this_origin_only(
    sso: tuple[Gateway, FakeIdp], web: Browser, engine: FakeEngine
) -> None:
    gw, _ = sso
    body = {**chat_body(), "stream": True, "stream_options": {"include_usage": True}}
    sibling = {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}
    refused = await web.request("POST", CHAT, json=body, headers=sibling)
    assert refused.status == 403 and "cross_origin_request" in refused.text
    no_origin = await web.request("POST", CHAT, json=body)  # nothing vouches for it either
    assert no_origin.status == 403 and "cross_origin_request" in no_origin.text
    assert engine.requests == []
    own = {"Origin": gw.base_url, "Sec-Fetch-Site": "same-origin"}
    models = await web.get(MODELS)  # a GET needs no Origin
    assert models.status == 200 and '"tiny"' in models.text
    served = await web.request("POST", CHAT, json=body, headers=own)
    assert served.status == 200 and '"usage"' in served.text and "[DONE]" in served.text
    (row,) = await gw.usage(1)
    async with gw.admin() as admin:
        signed = next(u for u in await admin.list_users() if u.name == "olivia")
    assert _who(row) == (signed.id, None, True)


def _who(row: UsageRow) -> tuple[int | None, int | None, bool]:
    return row.user_id, row.key_id, row.stream
