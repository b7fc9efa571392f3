"""`authproxy serve` where it can't listen: one `authproxy:` line, a non-zero exit, nothing
started (no health check, no store left open), no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .helpers import run_cli, write_config


def _config(tmp: Path, host: str, port: int) -> Path:
    raw = {
        "listen": {"host": host, "port": port},
        "data_dir": "data",
        "upstreams": [{"name": "local", "url": "http://127.0.0.1:9", "models": ["tiny"]}],
        "log_level": "info",
    }
    return write_config(tmp / "authproxy.yaml", raw)


async def _serve_fails(tmp: Path, config: Path) -> str:
    """Init, then serve: the one line it printed (it must exit non-zero, stdout empty)."""
    init = await run_cli("--config", str(config), "init", cwd=tmp)
    assert init.returncode == 0, init.stderr
    done = await run_cli("--config", str(config), "serve", cwd=tmp, within=30)
    assert (done.returncode, done.stdout) == (1, "")
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    # The store was never opened: SQLite leaves no write-ahead log behind.
    assert sorted(p.name for p in (tmp / "data").iterdir()) == ["authproxy.db", "secret.key"]
    return lines[0]


async def test_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = await _serve_fails(tmp_path, _config(tmp_path, "127.0.0.1", port))
    assert line == f"authproxy: cannot listen on 127.0.0.1:{port}: address already in use"


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("192.0.2.1", "cannot assign requested address"),  # TEST-NET-1: not this machine's
        ("no-such-host.invalid", ""),  # the resolver's own words
    ],
    ids=["foreign-address", "unknown-name"],
)
async def test_address_not_ours_is_one_line(tmp_path: Path, host: str, reason: str) -> None:
    line = await _serve_fails(tmp_path, _config(tmp_path, host, 8400))
    assert line.startswith(f"authproxy: cannot listen on {host}:8400: ")
    assert reason in line
