"""`authproxy serve` as a real process on a given config and environment: started, waited for
until it listens, killed (and reaped) on exit; or run to its failure to start."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from .helpers import AUTHPROXY, CliResult, cli_env

LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


async def _serve(config: Path, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        AUTHPROXY,
        "--config",
        str(config),
        "serve",
        cwd=config.parent,
        env={**cli_env(), **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@contextlib.asynccontextmanager
async def serving(config: Path, env: Mapping[str, str] = {}) -> AsyncIterator[str]:
    """The gateway's base URL while it runs (the config must say `log_level: info`)."""
    proc = await _serve(config, env)
    assert proc.stderr is not None
    seen: list[str] = []
    drain: asyncio.Task[tuple[bytes, bytes]] | None = None
    try:
        async with asyncio.timeout(60):
            while not (match := LISTENING.search(line := (await proc.stderr.readline()).decode())):
                assert line, f"authproxy serve exited early: {''.join(seen)}"
                seen.append(line)
        # Keep reading what it logs, so a full pipe never stalls it.
        drain = asyncio.create_task(proc.communicate())
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        if proc.returncode is None:
            proc.kill()
        await (drain if drain is not None else proc.communicate())


async def serve_fails(config: Path, env: Mapping[str, str] = {}) -> CliResult:
    """Run `authproxy serve`, which must exit by itself within 60 s; what it said."""
    proc = await _serve(config, env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())
