from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from authproxy.key_index import KeyIndex
from authproxy.keys import KeyHasher, generate_key
from authproxy.store import ConflictError, NotFoundError, StoreError, open_store
from authproxy.store.migrations import MIGRATIONS
from authproxy.store.records import AuditEntry, UsageRow
from authproxy.store_watch import StoreWatch


async def test_schema_wal_and_private_file(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    await store.close()
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert stat.S_IMODE((tmp_path / "a.db").stat().st_mode) == 0o600


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        await open_store(tmp_path / "a.db")


async def test_users_and_keys_round_trip(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    try:
        alice = await store.create_user(name="alice", role="user", email="a@x")
        with pytest.raises(ConflictError):
            await store.create_user(name="alice", role="user", email=None)
        key = await store.create_key(
            user_id=alice.id, key_hash=b"h" * 32, prefix="sk-abcdef", label="l", expires_at=None
        )
        assert (await store.list_keys(alice.id))[0].user_name == "alice"
        await store.revoke_key(key.id)
        with pytest.raises(ConflictError):
            await store.revoke_key(key.id)
        with pytest.raises(NotFoundError):
            await store.revoke_key(999)
        with pytest.raises(NotFoundError):
            await store.get_user("bob")
    finally:
        await store.close()


async def test_changes_from_another_connection_move_the_epoch_and_reload_the_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    gateway = await open_store(path)
    admin = await open_store(path)  # stands for the CLI in another process
    hasher = KeyHasher(secret=b"s" * 32)
    index = KeyIndex(store=gateway, hasher=hasher)
    watch = StoreWatch(store=gateway)
    watch.subscribe(index.reload)
    try:
        await watch.check()
        user = await admin.create_user(name="u", role="user", email=None)
        secret = generate_key()
        record = await admin.create_key(
            user_id=user.id, key_hash=hasher.digest(secret), prefix="p", label=None, expires_at=None
        )
        assert index.lookup(secret) is None
        assert await watch.check() is True
        assert index.lookup(secret) is not None
        # Usage and last-use writes are not auth changes: no reload for them.
        await admin.touch_keys({record.id: 1.0})
        assert await watch.check() is False
        await admin.set_user_disabled("u", True)
        assert await watch.check() is True
        assert index.lookup(secret) is None
    finally:
        await admin.close()
        await gateway.close()


async def test_expired_key_is_refused_from_memory(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    hasher = KeyHasher(secret=b"s" * 32)
    try:
        user = await store.create_user(name="u", role="user", email=None)
        secret = generate_key()
        await store.create_key(
            user_id=user.id, key_hash=hasher.digest(secret), prefix="p", label=None, expires_at=1.0
        )
        index = KeyIndex(store=store, hasher=hasher)
        await index.reload()
        assert len(index) == 1
        assert index.lookup(secret) is None
    finally:
        await store.close()


async def test_usage_rows_and_summary(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    try:
        user = await store.create_user(name="u", role="user", email=None)
        rows = [
            UsageRow(
                ts=100.0 + i,
                request_id=f"r{i}",
                user_id=user.id,
                key_id=None,
                model="m",
                upstream="up",
                endpoint="/v1/chat/completions",
                status=200,
                prompt_tokens=3,
                completion_tokens=4,
                duration_ms=1.0,
                ttft_ms=None,
                stream=bool(i % 2),
                usage_source="engine",
            )
            for i in range(10)
        ]
        await store.insert_usage(rows)
        assert await store.usage_rows() == rows
        (summary,) = await store.usage_summary(since=105.0)
        assert (summary.user_name, summary.requests, summary.prompt_tokens) == ("u", 5, 15)
    finally:
        await store.close()


def _row(
    ts: float, user_id: int | None, status: int = 200, tokens: tuple[int, int] = (3, 4)
) -> UsageRow:
    return UsageRow(
        ts=ts,
        request_id=f"r{ts}",
        user_id=user_id,
        key_id=None,
        model="m",
        upstream="up",
        endpoint="/v1/chat/completions",
        status=status,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        duration_ms=1.0,
        ttft_ms=None,
        stream=False,
        usage_source="engine",
    )


async def test_usage_timeline_has_every_slice_and_counts_errors(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    try:
        user = await store.create_user(name="u", role="user", email=None)
        await store.insert_usage(
            [
                _row(999.0, user.id),  # before the window
                _row(1000.0, user.id),  # first slice, inclusive start
                _row(1059.9, user.id, status=429, tokens=(0, 0)),
                _row(1120.0, None, tokens=(10, 20)),  # third slice; a deleted user still counts
                _row(1180.0, user.id),  # == until: outside
            ]
        )
        buckets = await store.usage_timeline(since=1000.0, until=1180.0, width=60.0)
        assert [b.start for b in buckets] == [1000.0, 1060.0, 1120.0]
        assert [(b.requests, b.tokens, b.errors) for b in buckets] == [
            (2, 7, 1),
            (0, 0, 0),
            (1, 30, 0),
        ]
        assert await store.usage_timeline(since=10.0, until=10.0, width=60.0) == []
    finally:
        await store.close()


async def test_audit_counts_per_action_since(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    try:
        for ts, action in ((1.0, "auth.failed"), (5.0, "auth.failed"), (6.0, "user.add")):
            await store.add_audit(AuditEntry(ts, "a", action, None, None, None))
        assert await store.audit_counts(since=2.0) == {"auth.failed": 1, "user.add": 1}
    finally:
        await store.close()
