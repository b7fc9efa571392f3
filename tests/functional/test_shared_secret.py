"""Gateways on one database must hash keys under one secret: one given by AUTHPROXY_SECRET is
used instead of secret.key, and a gateway or command with another secret is refused in one
line instead of turning every key away."""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp

from .helpers import MODELS, Secret, bearer, gateway_config, run_cli, write_config
from .served import serve_fails, serving


def _config(path: Path, data_dir: Path, database: str) -> Path:
    raw = gateway_config(data_dir, "http://127.0.0.1:9", database=database, log_level="info")
    return write_config(path, raw)


async def test_another_secret_is_refused_in_one_line(tmp_path: Path, pg_database: str) -> None:
    cfg = _config(tmp_path / "authproxy.yaml", tmp_path / "data", pg_database)
    init = await run_cli("--config", str(cfg), "init")
    assert init.returncode == 0, init.stderr
    other = {"AUTHPROXY_SECRET": secrets.token_hex(32)}

    failed = await serve_fails(cfg, other)
    assert failed.returncode == 1
    (line,) = failed.stderr.splitlines()
    assert line.startswith("authproxy: cannot start: the server secret")
    assert "same secret" in line

    listed = await run_cli("--config", str(cfg), "users", "list", env=other)
    assert listed.returncode == 1 and listed.stdout == ""
    (line,) = listed.stderr.splitlines()
    assert line.startswith("authproxy: the server secret")


async def test_a_second_machine_takes_the_secret_from_the_environment(
    tmp_path: Path, pg_database: str
) -> None:
    first = _config(tmp_path / "a.yaml", tmp_path / "a", pg_database)
    init = await run_cli("--config", str(first), "init")
    assert init.returncode == 0, init.stderr
    admin_key = Secret(init.stdout.strip())
    shared = {"AUTHPROXY_SECRET": (tmp_path / "a" / "secret.key").read_text().strip()}

    second = _config(tmp_path / "b.yaml", tmp_path / "b", pg_database)
    async with (
        serving(second, shared) as base,
        aiohttp.ClientSession() as client,
        client.get(base + MODELS, headers=bearer(admin_key)) as r,
    ):
        assert r.status == 200
    assert not (tmp_path / "b" / "secret.key").exists()
