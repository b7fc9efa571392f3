"""Shared pieces of the functional tier: the in-process gateway, raw HTTP, SSE, usage polling.

Everything binds to 127.0.0.1 on a free port and is stopped by the context manager that
started it. Keys live in memory only: never print or log them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from authproxy.admin.service import AdminService
from authproxy.app import build_app
from authproxy.cli.commands import admin_service
from authproxy.config.schema import Config
from authproxy.store import open_store
from authproxy.store.records import UsageRow
from authproxy.web.protocol import JsonErrorRunner

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
MESSAGES = "/v1/messages"
MODELS = "/v1/models"
KEY_RE = re.compile(r"^sk-[A-Za-z0-9_-]{43}$")
AUTHPROXY = str(Path(sys.executable).with_name("authproxy"))
PROMPT_WORDS = 5  # words in chat_body's messages: the fake engine's prompt token count
DEFAULT_COMPLETION = 8  # the fake engine's completion tokens when max_tokens is not given


def chat_body(model: str = "tiny", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "one two three"},
        ],
        **extra,
    }


class Secret(str):
    """A key (or a header carrying one) whose repr never shows it, in tracebacks either."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<secret>'"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": Secret(f"Bearer {key}")}


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env() -> dict[str, str]:
    """The environment for CLI subprocesses: no AUTHPROXY_* overrides leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AUTHPROXY_")}


def gateway_config(data_dir: Path, upstream_url: str, **overrides: Any) -> dict[str, Any]:
    """The raw config of a test gateway: engine models tiny and big, role restricted -> tiny."""
    raw: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "data_dir": str(data_dir),
        "upstreams": [{"name": "local", "url": upstream_url, "models": ["tiny", "big"]}],
        "roles": {
            "admin": {"models": ["*"]},
            "user": {"models": ["*"]},
            "restricted": {"models": ["tiny"]},
        },
        "timeouts": {"connect": 2, "first_byte": 30, "idle": 30},
        "shutdown_grace": 10,
        "log_level": "warning",
    }
    raw.update(overrides)
    return raw


def write_config(path: Path, raw: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(raw)), encoding="utf-8")
    return path


@dataclass
class Accounts:
    """The users every test gateway starts with (keys are secrets: never print them)."""

    admin_key: Secret = field(default=Secret(), repr=False)
    user_key: Secret = field(default=Secret(), repr=False)
    user_key_id: int = 0
    user_id: int = 0
    restricted_key: Secret = field(default=Secret(), repr=False)


async def seed_accounts(config: Config) -> Accounts:
    """Create the data dir, an admin, a normal user `alice` and a `restricted` user `rita`."""
    acc = Accounts()
    async with admin_service(config, create=True) as admin:
        await admin.add_user("root", role="admin")
        acc.admin_key = Secret((await admin.create_key("root")).secret)
        alice = await admin.add_user("alice", role="user")
        new = await admin.create_key("alice")
        acc.user_key, acc.user_key_id, acc.user_id = Secret(new.secret), new.record.id, alice.id
        await admin.add_user("rita", role="restricted")
        acc.restricted_key = Secret((await admin.create_key("rita")).secret)
    return acc


async def wait_usage(where: Path | str, count: int, within: float = 10.0) -> list[UsageRow]:
    """Poll the store (a SQLite file or a PostgreSQL URL) until it holds at least `count`
    usage rows; all rows, oldest first."""
    store = await open_store(where)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            rows = await store.usage_rows()
            if len(rows) >= count:
                return rows
            if loop.time() > deadline:
                raise AssertionError(f"expected {count} usage row(s) within {within}s, got {rows}")
            await asyncio.sleep(0.05)
    finally:
        await store.close()


@dataclass
class Gateway:
    base_url: str
    port: int
    config: Config
    config_path: Path
    accounts: Accounts
    app: web.Application = field(repr=False)

    def url(self, path: str) -> str:
        return self.base_url + path

    async def usage(self, count: int, within: float = 10.0) -> list[UsageRow]:
        return await wait_usage(self.config.store_location, count, within)

    @contextlib.asynccontextmanager
    async def admin(self) -> AsyncIterator[AdminService]:
        async with admin_service(self.config) as service:
            yield service


@contextlib.asynccontextmanager
async def running_gateway(
    tmp: Path, upstream_url: str, *, port: int = 0, **overrides: Any
) -> AsyncIterator[Gateway]:
    """The gateway in-process on 127.0.0.1 (`port`, else a free one), as `authproxy serve`
    runs it."""
    raw = gateway_config(tmp / "data", upstream_url, **overrides)
    config_path = write_config(tmp / "authproxy.yaml", raw)
    config = Config.model_validate(raw)
    accounts = await seed_accounts(config)
    app = build_app(config)
    runner = JsonErrorRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        port = int(runner.addresses[0][1])
        yield Gateway(f"http://127.0.0.1:{port}", port, config, config_path, accounts, app)
    finally:
        await runner.cleanup()


# -- the CLI in another process, and polling for a change to take effect -------------------


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(
    *args: str, cwd: Path | None = None, within: float = 60.0, env: Mapping[str, str] = {}
) -> CliResult:
    """`authproxy ARGS...` in a subprocess (the event loop, and so the gateway, keeps running);
    `env` adds to the clean environment (e.g. AUTHPROXY_SECRET)."""
    proc = await asyncio.create_subprocess_exec(
        AUTHPROXY,
        *args,
        cwd=cwd,
        env={**cli_env(), **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())


async def poll_status(
    fetch: Callable[[], Awaitable[int]], want: int, within: float
) -> tuple[float, list[int]]:
    """Call `fetch` until it returns `want`; (seconds it took, statuses seen). Fails after
    `within` seconds (the last attempt may start just before the deadline)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    seen: list[int] = []
    while True:
        status = await fetch()
        seen.append(status)
        elapsed = loop.time() - start
        if status == want:
            return elapsed, seen
        if elapsed > within:
            raise AssertionError(f"no {want} within {within}s; statuses seen: {seen}")
        await asyncio.sleep(0.02)
