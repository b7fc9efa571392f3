"""`authproxy db copy --to postgresql://…`: an installation that ran on SQLite moves to
PostgreSQL whole (ids kept), and a gateway started on the copy accepts the same keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
from fakes.engine import FakeEngine

from authproxy.clock import now
from authproxy.store import Store, open_store
from authproxy.store.records import ResponseOwner

from .helpers import (
    CHAT,
    MODELS,
    bearer,
    chat_body,
    gateway_config,
    run_cli,
    running_gateway,
    write_config,
)
from .served import serving

SESSION_HASH = hashlib.sha256(b"a browser session").digest()


async def _status(session: aiohttp.ClientSession, url: str, key: str) -> int:
    async with session.get(url, headers=bearer(key)) as r:
        await r.read()
        return r.status


async def _everything(store: Store) -> list[object]:
    return [
        await store.list_users(),
        await store.list_keys(),
        await store.active_keys(),
        await store.list_model_settings(),
        await store.quota_overrides(),
        await store.usage_rows(),
        await store.list_audit(),
        await store.list_sessions(),
        await store.password_hash("alice"),
        await store.user_by_subject("sub-alice"),
        await store.response_owner("resp_alice"),
    ]


async def test_db_copy_moves_an_installation_whose_keys_keep_working(
    tmp_path: Path, engine: FakeEngine, pg_database: str, session: aiohttp.ClientSession
) -> None:
    # An installation with history: a request served, a key revoked, limits and a model
    # switched, a password, an OIDC subject, a browser session.
    async with running_gateway(tmp_path, engine.base_url) as gw:
        async with session.post(
            gw.url(CHAT), json=chat_body(), headers=bearer(gw.accounts.user_key)
        ) as r:
            assert r.status == 200
        await gw.usage(1)
        async with gw.admin() as admin:
            rita = (await admin.list_keys("rita"))[0]
            await admin.revoke_key(rita.id)
            await admin.set_quota("alice", tokens_per_day=5000)
            await admin.set_model_enabled("big", False)
            await admin.set_password("alice", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
        sqlite_config = gw.config_path
    source = await open_store(gw.config.db_path)
    try:
        alice = await source.get_user("alice")
        await source.link_subject(alice.id, "sub-alice")
        await source.create_session(
            id_hash=SESSION_HASH, user_id=alice.id, via="oidc", expires_at=now() + 3600,
            source="127.0.0.1", user_agent="test",
        )  # fmt: skip
        await source.record_response(ResponseOwner("resp_alice", alice.id, "tiny", "local", 1.0))
        before = await _everything(source)
    finally:
        await source.close()

    copy = await run_cli("--config", str(sqlite_config), "db", "copy", "--to", pg_database)
    assert copy.returncode == 0, copy.stderr
    assert copy.stdout.startswith("3 users, 3 keys, 1 model settings, 1 quota overrides,")
    assert "1 usage rows" in copy.stdout and "1 browser sessions" in copy.stdout
    assert "1 stored responses" in copy.stdout
    password = pg_database.split(":")[2].split("@")[0]
    assert password not in copy.stdout + copy.stderr

    again = await run_cli("--config", str(sqlite_config), "db", "copy", "--to", pg_database)
    assert again.returncode == 1 and again.stdout == ""
    (line,) = again.stderr.splitlines()
    assert line.startswith("authproxy: postgresql://") and "is not empty (users has rows)" in line
    assert password not in line

    copied = await open_store(pg_database)
    try:
        assert await _everything(copied) == before
    finally:
        await copied.close()

    # The real gateway on the copy: same secret.key, `database:` pointing at PostgreSQL.
    raw = gateway_config(gw.config.data_dir, engine.base_url, database=pg_database)
    pg_config = write_config(tmp_path / "pg.yaml", {**raw, "log_level": "info"})
    async with serving(pg_config) as base:
        assert await _status(session, base + MODELS, gw.accounts.user_key) == 200
        assert await _status(session, base + MODELS, gw.accounts.admin_key) == 200
        assert await _status(session, base + MODELS, gw.accounts.restricted_key) == 401
    # New rows continue after the copied ids (the sequences were moved on).
    created = await run_cli("--config", str(pg_config), "keys", "create", "alice")
    assert created.returncode == 0, created.stderr
    listed = await run_cli("--config", str(pg_config), "keys", "list", "alice")
    assert listed.stdout.splitlines()[-1].split()[0] == "4"


async def test_db_copy_says_what_is_missing_in_one_line(tmp_path: Path, pg_database: str) -> None:
    cfg = write_config(
        tmp_path / "authproxy.yaml", gateway_config(tmp_path / "data", "http://127.0.0.1:9")
    )
    for args, problem in (
        ((), "name the PostgreSQL database"),
        (("--to", "sqlite:///x.db"), "--to: want a postgresql://"),
        (("--to", pg_database), "no SQLite database at"),
    ):
        result = await run_cli("--config", str(cfg), "db", "copy", *args)
        assert result.returncode == 1
        (line,) = result.stderr.splitlines()
        assert line.startswith("authproxy: ") and problem in line
