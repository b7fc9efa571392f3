"""`authproxy init`, the admin commands and the gateway with `database: postgresql://…` (a
fresh database in the throwaway cluster of tests/pg), as real processes."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from fakes.engine import FakeEngine

from .helpers import (
    KEY_RE,
    MODELS,
    Secret,
    bearer,
    gateway_config,
    poll_status,
    run_cli,
    running_gateway,
    write_config,
)

TAKES_EFFECT_WITHIN = 1.0


async def _status(session: aiohttp.ClientSession, url: str, key: str) -> int:
    async with session.get(url, headers=bearer(key)) as r:
        await r.read()
        return r.status


async def test_init_and_the_admin_commands_work_on_postgresql(
    tmp_path: Path, pg_database: str
) -> None:
    raw = gateway_config(tmp_path / "data", "http://127.0.0.1:9", database=pg_database)
    cfg = str(write_config(tmp_path / "authproxy.yaml", raw))
    said: list[str] = []

    async def cli(*args: str) -> str:
        result = await run_cli("--config", cfg, *args)
        said.extend((result.stdout, result.stderr))
        assert result.returncode == 0, result.stderr
        return result.stdout

    admin_key = Secret((await cli("init")).strip())
    assert KEY_RE.match(admin_key)
    # The data lives in PostgreSQL: data_dir holds only the secret.
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["secret.key"]

    assert "added user bob" in await cli("users", "add", "bob", "--role", "user")
    assert KEY_RE.match((await cli("keys", "create", "bob", "--label", "ci")).strip())
    await cli("users", "quota", "bob", "--tokens-per-day", "1000")
    await cli("models", "disable", "tiny")
    await cli("users", "role", "bob", "restricted")
    users = json.loads(await cli("users", "list", "--json"))
    assert [(u["name"], u["role"]) for u in users] == [("admin", "admin"), ("bob", "restricted")]
    keys = json.loads(await cli("keys", "list", "--json"))
    assert [(k["id"], k["user_name"], k["label"]) for k in keys] == [
        (1, "admin", "created by init"),
        (2, "bob", "ci"),
    ]
    models = json.loads(await cli("models", "list", "--json"))
    assert {m["model"]: m["enabled"] for m in models}["tiny"] is False
    usage = json.loads(await cli("usage", "--json"))
    assert {r["user"]["name"] for r in usage["users"]} == {"admin", "bob"}
    audit = json.loads(await cli("audit", "--json"))
    assert {"user.add", "key.create"} <= {e["action"] for e in audit}

    again = await run_cli("--config", cfg, "init")
    assert again.returncode == 1
    assert again.stderr.startswith("authproxy: already initialised")
    password = pg_database.split(":")[2].split("@")[0]
    assert not any(password in text for text in said)


async def test_the_gateway_serves_keys_from_postgresql_and_sees_cli_changes_at_once(
    tmp_path: Path, engine: FakeEngine, pg_database: str, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url, database=pg_database) as gw:
        models = gw.url(MODELS)
        assert await _status(session, models, gw.accounts.user_key) == 200
        created = await run_cli("--config", str(gw.config_path), "keys", "create", "alice")
        assert created.returncode == 0, created.stderr
        key = Secret(created.stdout.strip())
        took, _ = await poll_status(lambda: _status(session, models, key), 200, TAKES_EFFECT_WITHIN)
        assert took <= TAKES_EFFECT_WITHIN
        revoked = await run_cli(
            "--config", str(gw.config_path), "keys", "revoke", str(gw.accounts.user_key_id)
        )
        assert revoked.returncode == 0, revoked.stderr
        await poll_status(
            lambda: _status(session, models, gw.accounts.user_key), 401, TAKES_EFFECT_WITHIN
        )
        assert await _status(session, models, key) == 200
