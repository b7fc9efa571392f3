"""The chat page in a real browser: Debian's chromium, headless under Playwright, signs in with
a password, talks to the real llama-server through `authproxy serve`, stops a long reply (the
engine's slot is free again at once), and finds its conversation again after a reload; the
usage row is the person's. A second gateway in front of the fake engine brings the faults a
real engine won't make on demand: a quota refusal, a stream cut off mid-way, a sibling origin
posting with the cookie. Screenshots of desktop and phone widths go to `test-artifacts/`.
"""

from __future__ import annotations

import http.server
import json
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fakes.engine import FakeEngine
from playwright.sync_api import BrowserContext, ConsoleMessage, Page

from .chromium import ARTIFACTS, needs_chromium
from .engine_thread import EngineThread
from .gateway import Gateway
from .llama_server import LlamaServer, free_port

pytestmark = needs_chromium

PASSWORD = "correct horse battery staple"
LONG = 7000  # the gateway's default reply limit here: ~15 s of the tiny model, stopped early
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _gateway(workdir: Path, upstream: str, **settings: Any) -> Gateway:
    gateway = Gateway(
        workdir=workdir,
        settings={
            "upstreams": [{"name": "engine", "url": upstream, "discover": True}],
            "roles": {
                "admin": {"models": ["*"]},
                "user": {"models": ["*"], "tokens_per_day": 200_000},
            },
            "quotas": {"default_max_tokens": LONG},
            **settings,
        },
    )
    gateway.run("init")
    gateway.run("users", "add", "pat", "--email", "pat@example.com")
    gateway.run("users", "passwd", "pat", "--stdin", stdin=PASSWORD + "\n")
    return gateway


@pytest.fixture(scope="module")
def llama_site(
    llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    with _gateway(tmp_path_factory.mktemp("chat-llama"), llama_server.base_url) as gateway:
        yield gateway


@dataclass
class FakeSite:
    gateway: Gateway
    engine: FakeEngine


@pytest.fixture(scope="module")
def fake_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSite]:
    with EngineThread(["tiny"]) as engine:
        engine.token_delay = 0.01
        gateway = _gateway(tmp_path_factory.mktemp("chat-fake"), engine.base_url)
        with gateway:
            yield FakeSite(gateway, engine)


@dataclass
class Watched:
    """A page, and what the browser said about it that must never happen."""

    page: Page
    violations: list[str] = field(default_factory=list)


def _open(browser: BrowserContext) -> Watched:
    page = browser.new_page()
    watched = Watched(page)

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            watched.violations.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: watched.violations.append(f"script error: {error}"))
    return watched


def _sign_in(page: Page, gw: Gateway) -> None:
    page.goto(gw.base_url + "/chat")
    assert urlsplit(page.url).path == "/auth/login"
    page.fill("#username", "pat")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(gw.base_url + "/chat")
    page.wait_for_function("() => document.getElementById('model').value === 'tiny'")


IDLE = "() => document.getElementById('chat').dataset.state === 'idle'"


def _idle(page: Page, timeout: float = 60_000) -> None:
    page.wait_for_function(IDLE, timeout=timeout)


def _texts(page: Page, selector: str) -> list[str]:
    return [str(t) for t in page.eval_on_selector_all(selector, "ns => ns.map(n => n.textContent)")]


def _replies(page: Page) -> list[str]:
    return _texts(page, ".msg.assistant .body")


def _usage_rows(gw: Gateway) -> list[dict[str, Any]]:
    db = sqlite3.connect(gw.workdir / "data" / "authproxy.db")
    db.row_factory = sqlite3.Row
    try:
        query = "SELECT u.*, us.name AS user FROM usage u LEFT JOIN users us ON us.id = u.user_id"
        return [dict(r) for r in db.execute(query + " ORDER BY u.id")]
    finally:
        db.close()


def _wait_rows(gw: Gateway, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(rows := _usage_rows(gw)) < count:
        assert time.monotonic() < deadline, f"{count} usage rows expected, {rows}"
        time.sleep(0.05)
    return rows


def _busy_slots(engine: LlamaServer) -> int:
    with _DIRECT.open(engine.base_url + "/slots", timeout=5) as resp:
        return sum(1 for slot in json.load(resp) if slot.get("is_processing"))


def test_sign_in_chat_stop_and_find_it_again(
    llama_site: Gateway, llama_server: LlamaServer, browser: BrowserContext
) -> None:
    gw = llama_site
    ARTIFACTS.mkdir(exist_ok=True)
    watched = _open(browser)
    page = watched.page
    _sign_in(page, gw)

    # A reply streams in: text is on the page while the request is still running.
    page.fill("#max-tokens", "2000")
    page.fill("#prompt", "Hello, who are you?")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('chat').dataset.state === 'streaming'"
        " && document.querySelector('.msg.assistant .body')?.textContent.length > 0"
    )
    partly = len(_replies(page)[0])
    _idle(page)
    (reply,) = _replies(page)
    assert 0 < partly < len(reply) == 2000  # one letter a token, none lost on the way
    assert "2000 reply tokens" in (page.text_content(".msg.assistant .meta") or "")
    assert page.input_value("#prompt") == ""
    (row,) = _wait_rows(gw, 1)
    assert (row["user"], row["key_id"], row["stream"]) == ("pat", None, 1)
    assert (row["completion_tokens"], row["endpoint"]) == (2000, "/v1/chat/completions")

    # Shift+Enter is a new line, not a message.
    page.fill("#prompt", "first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert page.input_value("#prompt") == "first line\nsecond line"
    assert page.eval_on_selector_all(".msg", "ns => ns.length") == 2

    # A long one, stopped: the engine's slot is free again at once.
    page.fill("#max-tokens", "")
    page.fill("#prompt", "Tell me a very long story.")
    page.click("#send")
    page.wait_for_function(
        "() => document.querySelectorAll('.msg.assistant .body')[1]?.textContent.length > 50"
    )
    assert _busy_slots(llama_server) == 1
    page.click("#stop")
    stopped = time.monotonic()
    while _busy_slots(llama_server):
        assert time.monotonic() - stopped < 3, "the slot is still busy 3 s after Stop"
        time.sleep(0.05)
    freed = time.monotonic() - stopped
    _idle(page)
    assert "stopped" in (page.text_content(".msg.assistant:last-child .meta") or "")
    partial = _replies(page)[1]
    assert 50 < len(partial) < LONG
    rows = _wait_rows(gw, 2)
    assert rows[1]["user"] == "pat" and rows[1]["completion_tokens"] > 0  # charged what streamed

    # The next request is served at once.
    page.fill("#max-tokens", "20")
    page.fill("#prompt", "And a short one.")
    began = time.monotonic()
    page.keyboard.press("Enter")
    _idle(page)
    next_reply = time.monotonic() - began
    assert len(_replies(page)[2]) == 20
    print(f"\nslot free {freed:.2f}s after Stop; next 20-token reply in {next_reply:.2f}s")

    # After a reload the conversation is still there, as it was.
    before = _texts(page, ".msg .body")
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('.msg').length === 6")
    assert _texts(page, ".msg .body") == before
    assert page.text_content("#conversations li.current .pick") == "Hello, who are you?"
    page.screenshot(path=str(ARTIFACTS / "chat.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    time.sleep(0.3)  # the conversation list slides away
    page.screenshot(path=str(ARTIFACTS / "chat-phone.png"))
    page.click("#toggle-list")
    page.wait_for_function("() => document.getElementById('side').getBoundingClientRect().x >= 0")
    time.sleep(0.3)
    page.screenshot(path=str(ARTIFACTS / "chat-phone-list.png"))

    # Renamed, it keeps the name; deleted, it is gone, after a reload too.
    page.click("#conversations li.current .rename")
    page.fill("#conversations li input", "A story, stopped")
    page.keyboard.press("Enter")
    page.mouse.click(370, 450)  # beside the list: it closes
    page.wait_for_function("() => document.getElementById('side').getBoundingClientRect().x < 0")
    page.reload()
    assert page.text_content("#conversations li .pick") == "A story, stopped"
    page.set_viewport_size({"width": 1100, "height": 900})
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#conversations li.current .delete")
    assert page.eval_on_selector_all("#conversations li", "ns => ns.length") == 0
    page.reload()
    page.wait_for_function("() => document.getElementById('model').value === 'tiny'")
    assert page.eval_on_selector_all("#conversations li, .msg", "ns => ns.length") == 0

    # The account page and the chat page link to each other.
    page.click("#to-account")
    page.wait_for_url(gw.base_url + "/account")
    page.click("#to-chat")
    page.wait_for_url(gw.base_url + "/chat")
    assert watched.violations == []


SEEDED = {
    "id": "seeded",
    "title": "Sorting <b>dicts</b>",
    "model": "tiny",
    "updated": 1,
    "messages": [
        {"role": "user", "content": "Sort dicts by a key? <img src=x id=planted>"},
        {
            "role": "assistant",
            "model": "tiny",
            "content": (
                "Use `sorted` with a key:\n\n```python\nby_age = sorted(people, key=lambda p:"
                ' p["age"])\nprint("<script>alert(1)</script>")\n```\n\nThat returns a new list;'
                ' <a href="https://example.com" id="planted-link">click</a>.\n\nsecond <b>line</b>'
            ),
            "usage": {"prompt_tokens": 42, "completion_tokens": 57},
            "seconds": 1.8,
        },
    ],
}


def test_model_output_is_shown_as_text_never_as_markup(
    fake_site: FakeSite, browser: BrowserContext
) -> None:
    gw = fake_site.gateway
    watched = _open(browser)
    page = watched.page
    _sign_in(page, gw)
    user_id = page.get_attribute("#chat", "data-user")
    page.evaluate(
        "([key, conversation]) => localStorage.setItem(key,"
        " JSON.stringify({conversations: [conversation], current: conversation.id}))",
        [f"authproxy.chat.v1.{user_id}", SEEDED],
    )
    page.reload()
    page.wait_for_selector(".msg.assistant pre code")
    planted = "#messages img, #messages script, #messages a, #messages b"
    assert page.query_selector_all(planted) == []
    assert page.text_content(".msg.assistant pre code") == (
        'by_age = sorted(people, key=lambda p: p["age"])\nprint("<script>alert(1)</script>")'
    )
    assert page.text_content(".msg.assistant pre .lang") == "python"
    assert _texts(page, ".msg.assistant p") == [
        "Use sorted with a key:",
        'That returns a new list; <a href="https://example.com" id="planted-link">click</a>.',
        "second <b>line</b>",
    ]
    assert page.eval_on_selector_all(".msg.assistant p code", "ns => ns.length") == 1
    assert page.text_content("#conversations .pick") == "Sorting <b>dicts</b>"
    page.screenshot(path=str(ARTIFACTS / "chat-code.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    time.sleep(0.3)
    page.screenshot(path=str(ARTIFACTS / "chat-code-phone.png"))
    assert watched.violations == []


def test_a_refusal_and_a_cut_off_stream_are_said_plainly(
    fake_site: FakeSite, browser: BrowserContext
) -> None:
    gw, engine = fake_site.gateway, fake_site.engine
    watched = _open(browser)
    page = watched.page
    _sign_in(page, gw)
    gw.run("users", "quota", "pat", "--tokens-per-day", "10")
    try:
        time.sleep(1.2)  # a running gateway applies it within a second
        page.fill("#prompt", "Anything?")
        page.keyboard.press("Enter")
        page.wait_for_selector("#notice:not([hidden])")
        notice = page.text_content("#notice") or ""
        assert notice.startswith("Not now: token quota") and "Retry-After: " in notice, notice
        assert page.input_value("#prompt") == "Anything?"  # given back, to send again later
        assert page.eval_on_selector_all(".msg", "ns => ns.length") == 0
        page.screenshot(path=str(ARTIFACTS / "chat-quota.png"))
    finally:
        gw.run("users", "quota", "pat", "--tokens-per-day", "role")
    time.sleep(1.2)
    engine.fake = {"fault": "cutoff", "after": 3}
    try:
        page.click("#send")
        _idle(page)
    finally:
        engine.fake = {}
    assert _replies(page) == ["tok0 tok1 tok2 "]
    error = page.text_content(".msg.assistant .meta .error") or ""
    assert "ended the stream early" in error or "closed the stream early" in error, error
    assert page.is_hidden("#notice")
    page.screenshot(path=str(ARTIFACTS / "chat-cut-off.png"))
    assert watched.violations == []


class _EvilPage(http.server.BaseHTTPRequestHandler):
    """A page of another origin on this host (same site, other port) that posts to the
    gateway with whatever cookie the browser holds for it: a simple request, no preflight."""

    target = ""

    def do_GET(self) -> None:
        script = (
            f"fetch({json.dumps(self.target)}, {{method: 'POST', credentials: 'include',"
            " mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: JSON.stringify("
            "{model: 'tiny', messages: [{role: 'user', content: 'hi'}]})})"
            ".then(() => { document.title = 'sent'; }, () => { document.title = 'failed'; });"
        )
        body = f"<!doctype html><title>evil</title><script>{script}</script>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_sibling_origin_posting_with_the_cookie_is_refused(
    fake_site: FakeSite, browser: BrowserContext
) -> None:
    gw, engine = fake_site.gateway, fake_site.engine
    page = _open(browser).page
    _sign_in(page, gw)
    before = len(engine.requests)
    _EvilPage.target = gw.base_url + "/v1/chat/completions"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _EvilPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        evil = browser.new_page()
        evil.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        evil.wait_for_function("() => document.title !== 'evil'")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    deadline = time.monotonic() + 5
    lines: list[dict[str, Any]] = []
    while not lines:
        assert time.monotonic() < deadline, "no access log line for the sibling's POST"
        log = (gw.workdir / "gateway.log").read_text(errors="replace").splitlines()
        entries = [json.loads(x) for x in log if x.startswith("{")]
        lines = [e for e in entries if e["method"] == "POST" and e["status"] == 403]
        time.sleep(0.05)
    # The cookie went along (same site), so it was the origin check that refused it.
    assert lines[-1]["error"] == "cross_origin_request" and lines[-1]["user"] == "pat"
    assert len(engine.requests) == before
