"""Real gateway processes on one PostgreSQL (or one SQLite file), as a team runs them: two
`authproxy serve` processes, each with its own config file and data dir as on two hosts, the
second given the first's secret by `AUTHPROXY_SECRET` and the database by `AUTHPROXY_DATABASE`;
or one `authproxy serve` with `workers: N`. Every process is stopped on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from functional.helpers import (
    AUTHPROXY,
    CHAT,
    Accounts,
    Secret,
    bearer,
    chat_body,
    cli_env,
    gateway_config,
    seed_accounts,
    wait_usage,
    write_config,
)
from functional.serve_process import Serving, serving
from functional.wire import parse_sse
from prometheus_client.parser import text_string_to_metric_families

from authproxy.config.schema import Config
from authproxy.store.records import UsageRow

__all__ = [
    "Answer",
    "Cluster",
    "Gateway",
    "ask",
    "chat",
    "create_key_on_account_page",
    "finish_across_sigterm",
    "gateways",
    "metrics",
    "status_of",
    "usage_ids",
]

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
KEY_RE = re.compile(r'<code class="secret" id="key">(sk-[A-Za-z0-9_-]{43})</code>')


@dataclass
class Gateway:
    """One running `authproxy serve` (a lone gateway or a supervisor of workers)."""

    serving: Serving
    config_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.serving.port}"

    @property
    def proc(self) -> asyncio.subprocess.Process:
        return self.serving.proc

    @property
    def log(self) -> str:
        return "".join(self.serving.log)

    def url(self, path: str) -> str:
        return self.base_url + path


@dataclass
class Cluster:
    """The gateways of one deployment, their shared store and first users."""

    gateways: list[Gateway]
    config: Config  # the first gateway's
    accounts: Accounts
    where: Path | str  # the store: the PostgreSQL URL or the SQLite file

    async def usage(self, count: int, within: float = 15.0) -> list[UsageRow]:
        return await wait_usage(self.where, count, within)


@contextlib.asynccontextmanager
async def gateways(
    tmp: Path,
    engine_url: str,
    *,
    database: str | None,
    count: int = 2,
    **overrides: Any,
) -> AsyncIterator[Cluster]:
    """``count`` gateway processes (``workers`` in ``overrides`` makes each a supervisor)."""
    raw = gateway_config(tmp / "host1" / "data", engine_url, log_level="info", **overrides)
    if database is not None:
        raw["database"] = database
    config = Config.model_validate(raw)
    accounts = await seed_accounts(config)
    secret = (tmp / "host1" / "data" / "secret.key").read_text().strip()
    async with contextlib.AsyncExitStack() as stack:
        started: list[Gateway] = []
        for n in range(1, count + 1):
            host = tmp / f"host{n}"
            host.mkdir(exist_ok=True)
            env = cli_env()
            mine = dict(raw, data_dir=str(host / "data"))
            if n > 1:  # another host: the secret and the database from its environment
                env["AUTHPROXY_SECRET"] = secret
                if database is not None:
                    env["AUTHPROXY_DATABASE"] = mine.pop("database")
            path = write_config(host / "authproxy.yaml", mine)
            argv = [AUTHPROXY, "--config", str(path), "serve"]
            running = await stack.enter_async_context(serving(argv, cwd=host, env=env))
            started.append(Gateway(running, path, env))
        yield Cluster(started, config, accounts, config.store_location)
        for gw in started:  # whatever happened to the database, nothing blew up
            assert "Traceback" not in gw.log, gw.log[-4000:]


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]  # the JSON body ({} for a stream)
    request_id: str


async def chat(
    session: aiohttp.ClientSession, gw: Gateway, key: str, **body: Any
) -> tuple[int, dict[str, Any]]:
    """One ``chat_body`` completion (streamed: read to the end); the status and the JSON body,
    if any."""
    answer = await ask(session, gw, key, **body)
    return answer.status, answer.body


async def ask(session: aiohttp.ClientSession, gw: Gateway, key: str, **body: Any) -> Answer:
    """``chat``, with the request id the gateway gave it."""
    async with session.post(gw.url(CHAT), json=chat_body(**body), headers=bearer(key)) as r:
        data = await r.read()
        payload = await r.json() if r.content_type == "application/json" else {}
        assert data or r.status != 200
        return Answer(r.status, payload, r.headers["X-Request-Id"])


async def metrics(session: aiohttp.ClientSession, gw: Gateway) -> dict[str, float]:
    """The gateway's unlabelled series (``/metrics`` from loopback needs no key)."""
    async with session.get(gw.url("/metrics")) as r:
        assert r.status == 200
        text = await r.text()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.labels
    }


async def status_of(session: aiohttp.ClientSession, url: str, key: str) -> int:
    async with session.get(url, headers=bearer(key)) as r:
        await r.read()
        return r.status


async def create_key_on_account_page(gw: Gateway, user: str, password: str) -> Secret:
    """Sign in with a password on ``gw``'s page and create a key there, as a person would."""
    jar = aiohttp.CookieJar(unsafe=True)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as http:
        async with http.get(gw.url("/auth/login?next=/account")) as r:
            csrf = CSRF_RE.findall(await r.text())[0]
        form = {"username": user, "password": password, "csrf": csrf, "next": "/account"}
        async with http.post(gw.url("/auth/login"), data=form, allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        async with http.get(gw.url("/account")) as r:
            page = await r.text()
        token = CSRF_RE.findall(page[page.index('action="/account/keys"') :])[0]
        async with http.post(gw.url("/account/keys"), data={"csrf": token, "label": "laptop"}) as r:
            created = KEY_RE.search(await r.text())
            assert created is not None, r.status
            return Secret(created.group(1))


def usage_ids(rows: Sequence[UsageRow]) -> list[str]:
    return sorted(r.request_id for r in rows)


async def finish_across_sigterm(
    streams: Sequence[aiohttp.ClientResponse],
    proc: asyncio.subprocess.Process,
    *,
    exit_within: float,
) -> None:
    """Streams under way through ``proc``: once each has its first event, SIGTERM; every one
    still ends with ``[DONE]`` and the process exits 0. The streams are closed either way."""
    try:
        firsts = [await asyncio.wait_for(r.content.readuntil(b"\n\n"), 10) for r in streams]
        proc.send_signal(signal.SIGTERM)
        rests = [await asyncio.wait_for(r.content.read(), 20) for r in streams]
    finally:
        for r in streams:
            r.close()
    for head, rest in zip(firsts, rests, strict=True):
        assert parse_sse(head + rest)[-1].data == "[DONE]"
    assert await asyncio.wait_for(proc.wait(), exit_within) == 0
