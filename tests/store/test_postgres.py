"""What only the PostgreSQL backend has: several processes writing at once, change
notifications, migrations raced by processes opening a fresh database, and errors that never
show the password."""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit

import asyncpg
import pytest
from pg.cluster import PostgresCluster
from support.factories import usage_row

from authproxy.store import StoreError, open_store
from authproxy.store.migrations_postgres import MIGRATIONS_POSTGRES
from authproxy.store.postgres import PostgresStore, open_postgres
from authproxy.store.postgres_core import redact
from authproxy.store.records import QuotaOverride, UsageRow


def _usage(user_id: int, i: int) -> UsageRow:
    return usage_row(
        ts=float(i), request_id=f"r{i}", user_id=user_id, prompt_tokens=1, completion_tokens=1
    )


async def test_two_pools_writing_at_once_lose_nothing(pg_database: str) -> None:
    first, second = await open_postgres(pg_database), await open_postgres(pg_database)
    try:
        before = await first.auth_epoch()

        async def writer(store: PostgresStore, tag: str) -> None:
            for i in range(20):
                user = await store.create_user(name=f"{tag}{i}", role="user", email=None)
                await store.create_key(
                    user_id=user.id, key_hash=f"{tag}{i}".encode().ljust(32, b"."), prefix="p",
                    label=None, expires_at=None,
                )  # fmt: skip
                await store.insert_usage([_usage(user.id, i)])

        await asyncio.gather(writer(first, "a"), writer(second, "b"))
        assert len(await second.list_users()) == 40
        assert len({k.id for k in await first.list_keys()}) == 40
        assert len(await first.usage_rows()) == 40
        # Every user and key insert bumped the epoch once: no increment lost to a race.
        assert await second.auth_epoch() == before + 80
    finally:
        await first.close()
        await second.close()


async def test_changes_are_notified_to_another_store_within_a_second(pg_database: str) -> None:
    watcher, admin = await open_postgres(pg_database), await open_postgres(pg_database)
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        async with watcher.listen(heard.put_nowait):
            user = await admin.create_user(name="u", role="user", email=None)
            assert await asyncio.wait_for(heard.get(), 1.0) == "users"
            await admin.create_key(
                user_id=user.id, key_hash=b"k" * 32, prefix="p", label=None, expires_at=None
            )
            assert await asyncio.wait_for(heard.get(), 1.0) == "api_keys"
            await admin.set_model_enabled("m", False)
            assert await asyncio.wait_for(heard.get(), 1.0) == "models"
            await admin.set_quota(QuotaOverride(user.id, tokens_per_day=5))
            assert await asyncio.wait_for(heard.get(), 1.0) == "quotas"
            # Usage is not a change to who may do what: nothing is sent for it.
            await admin.insert_usage([_usage(user.id, 1)])
            await admin.touch_keys({1: 2.0})
            await asyncio.sleep(0.3)
            assert heard.empty()
        await admin.set_user_role("u", "admin")  # after leaving: no longer listening
        await asyncio.sleep(0.3)
        assert heard.empty()
    finally:
        await watcher.close()
        await admin.close()


_OPEN = """
import asyncio, sys
from authproxy.store import open_store
async def main():
    store = await open_store(sys.argv[1])
    await store.close()
asyncio.run(main())
"""


async def test_processes_opening_a_fresh_database_together_migrate_it_once(
    postgres_cluster: PostgresCluster,
) -> None:
    for _round in range(3):  # a race: several fresh databases to make it show
        url = postgres_cluster.create_database()
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", _OPEN, url, stderr=asyncio.subprocess.PIPE
            )
            for _ in range(4)
        ]
        errors = [(await p.communicate())[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
        con = await asyncpg.connect(url)
        try:
            versions = await con.fetch("SELECT version FROM schema_version")
            assert [tuple(v) for v in versions] == [(len(MIGRATIONS_POSTGRES),)]
            assert await con.fetchval("SELECT value FROM meta WHERE name = 'auth_epoch'") == 0
        finally:
            await con.close()
        postgres_cluster.drop_database(urlsplit(url).path.lstrip("/"))


async def test_a_newer_schema_is_refused(pg_database: str) -> None:
    store = await open_postgres(pg_database)
    await store.close()
    con = await asyncpg.connect(pg_database)
    await con.execute("UPDATE schema_version SET version = version + 5")
    await con.close()
    with pytest.raises(StoreError, match="newer"):
        await open_postgres(pg_database)


async def test_connection_errors_are_one_line_without_the_password(
    postgres_cluster: PostgresCluster, pg_database: str
) -> None:
    wrong = pg_database.replace(postgres_cluster.password, "not-the-password")
    with pytest.raises(StoreError) as refused:
        await open_store(wrong)
    message = str(refused.value)
    assert "password authentication failed" in message
    assert "not-the-password" not in message and ":***@" in message
    gone = pg_database.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreError, match="does not exist"):
        await open_store(gone)


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://u:s3cret@db:5432/a?sslmode=require") == (
        "postgresql://u:***@db:5432/a?sslmode=require"
    )
    assert redact("postgresql://u@db/a") == "postgresql://u@db/a"
    assert redact("postgresql://u:p%40ss@[::1]:5/a") == "postgresql://u:***@[::1]:5/a"
