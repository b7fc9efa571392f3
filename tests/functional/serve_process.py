"""`authproxy serve` as a real process in front of a fake engine, its output collected.

The gateway's own users (see ``seed_accounts``) are made first; the process listens on a free
port (``listen.port: 0``, read back from its "listening on" line). Both output streams are
collected, in order, in ``ServeProcess.log``; the process is killed on exit if still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakes.engine import FakeEngine

from authproxy.config.schema import Config

from .helpers import AUTHPROXY, Accounts, cli_env, gateway_config, seed_accounts, write_config

LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


@dataclass
class ServeProcess:
    proc: asyncio.subprocess.Process
    port: int
    config: Config
    accounts: Accounts
    log: list[str] = field(default_factory=list, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def _drain(stream: asyncio.StreamReader, log: list[str]) -> None:
    async for line in stream:
        log.append(line.decode(errors="replace"))


@dataclass
class Serving:
    """A started `authproxy serve`: the port from its "listening on" line; its output lines
    (both streams, in order) keep arriving in ``log``."""

    proc: asyncio.subprocess.Process
    port: int
    log: list[str] = field(default_factory=list, repr=False)


@contextlib.asynccontextmanager
async def serving(argv: list[str], *, cwd: Path, env: dict[str, str]) -> AsyncIterator[Serving]:
    """Run ``argv`` (an `authproxy ... serve`); enter once it listens, kill it on exit if it
    still runs."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    log: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode(errors="replace")
                assert line, f"authproxy serve exited early: {''.join(log)}"
                log.append(line)
                match = LISTENING.search(line)
                if match:
                    break
        drain = asyncio.create_task(_drain(proc.stdout, log))
        yield Serving(proc, int(match.group(1)), log)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if drain is not None:
            await asyncio.wait_for(drain, 10)


@contextlib.asynccontextmanager
async def serve_process(
    tmp: Path, engine: FakeEngine, *, log_level: str = "info", **overrides: Any
) -> AsyncIterator[ServeProcess]:
    raw = gateway_config(tmp / "data", engine.base_url, log_level=log_level, **overrides)
    path = write_config(tmp / "authproxy.yaml", raw)
    config = Config.model_validate(raw)
    accounts = await seed_accounts(config)
    argv = [AUTHPROXY, "--config", str(path), "serve"]
    async with serving(argv, cwd=tmp, env=cli_env()) as started:
        yield ServeProcess(started.proc, started.port, config, accounts, started.log)
