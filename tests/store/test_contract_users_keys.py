"""The store contract for who may do what (users, keys, models, quotas, the change epoch), on
both backends (see conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from authproxy.auth.key_index import KeyIndex
from authproxy.auth.keys import KeyHasher, generate_key
from authproxy.store import ConflictError, NotFoundError, Store
from authproxy.store.records import UNLIMITED, ModelSetting, QuotaOverride
from authproxy.store.watch import StoreWatch

from .conftest import Backend


async def test_users_and_keys_round_trip(store: Store) -> None:
    alice = await store.create_user(name="alice", role="user", email="a@x")
    assert (alice.name, alice.role, alice.email, alice.disabled) == ("alice", "user", "a@x", False)
    with pytest.raises(ConflictError):
        await store.create_user(name="alice", role="user", email=None)
    key = await store.create_key(
        user_id=alice.id, key_hash=b"h" * 32, prefix="sk-abcdef", label="l", expires_at=None
    )
    assert (key.user_name, key.prefix, key.label, key.revoked_at) == (
        "alice",
        "sk-abcdef",
        "l",
        None,
    )
    assert await store.list_keys(alice.id) == [key]
    revoked = await store.revoke_key(key.id)
    assert revoked.revoked_at is not None
    with pytest.raises(ConflictError):
        await store.revoke_key(key.id)
    with pytest.raises(NotFoundError):
        await store.revoke_key(999)
    with pytest.raises(NotFoundError):
        await store.get_user("bob")
    assert await store.get_user("alice") == alice


async def test_users_are_listed_by_name_byte_wise(store: Store) -> None:
    for name in ("bob", "Zed", "alice", "Émile"):
        await store.create_user(name=name, role="user", email=None)
    assert [u.name for u in await store.list_users()] == ["Zed", "alice", "bob", "Émile"]


async def test_role_and_disabled_changes(store: Store) -> None:
    await store.create_user(name="u", role="user", email=None)
    assert (await store.set_user_role("u", "admin")).role == "admin"
    assert (await store.set_user_disabled("u", True)).disabled is True
    assert (await store.get_user("u")).disabled is True
    assert (await store.set_user_disabled("u", False)).disabled is False
    with pytest.raises(NotFoundError):
        await store.set_user_role("nobody", "admin")
    with pytest.raises(NotFoundError):
        await store.set_user_disabled("nobody", True)


async def test_active_keys_leave_out_revoked_keys_and_disabled_users(store: Store) -> None:
    alice = await store.create_user(name="alice", role="user", email=None)
    bob = await store.create_user(name="bob", role="admin", email=None)
    kept = await store.create_key(
        user_id=alice.id, key_hash=b"a" * 32, prefix="p1", label=None, expires_at=5.0
    )
    gone = await store.create_key(
        user_id=alice.id, key_hash=b"b" * 32, prefix="p2", label=None, expires_at=None
    )
    await store.create_key(
        user_id=bob.id, key_hash=b"c" * 32, prefix="p3", label=None, expires_at=None
    )
    await store.revoke_key(gone.id)
    await store.set_user_disabled("bob", True)
    (active,) = await store.active_keys()
    assert (active.key_hash, active.key_id, active.user_id) == (b"a" * 32, kept.id, alice.id)
    assert (active.user_name, active.role, active.expires_at) == ("alice", "user", 5.0)
    assert [k.user_name for k in await store.list_keys()] == ["alice", "alice", "bob"]
    assert [k.prefix for k in await store.list_keys(bob.id)] == ["p3"]


async def test_a_service_key_is_marked_in_lists_and_in_the_active_index(store: Store) -> None:
    svc = await store.create_user(name="webui", role="user", email=None)
    plain = await store.create_key(
        user_id=svc.id, key_hash=b"p" * 32, prefix="p1", label=None, expires_at=None
    )
    service = await store.create_key(
        user_id=svc.id,
        key_hash=b"s" * 32,
        prefix="p2",
        label="open webui",
        expires_at=None,
        acts_for_users=True,
    )
    assert (plain.acts_for_users, service.acts_for_users) == (False, True)
    assert [k.acts_for_users for k in await store.list_keys(svc.id)] == [False, True]
    active = {k.key_id: k.acts_for_users for k in await store.active_keys()}
    assert active == {plain.id: False, service.id: True}
    assert (await store.revoke_key(service.id)).acts_for_users is True


async def test_touch_keys_records_last_use(store: Store) -> None:
    user = await store.create_user(name="u", role="user", email=None)
    key = await store.create_key(
        user_id=user.id, key_hash=b"h" * 32, prefix="p", label=None, expires_at=None
    )
    await store.touch_keys({})
    await store.touch_keys({key.id: 123.5})
    assert (await store.list_keys())[0].last_used_at == 123.5


async def test_model_switches(store: Store) -> None:
    assert await store.list_model_settings() == []
    assert await store.set_model_enabled("tiny", False) == ModelSetting("tiny", False)
    await store.set_model_enabled("Big", True)
    await store.set_model_enabled("tiny", True)
    assert await store.list_model_settings() == [
        ModelSetting("Big", True),
        ModelSetting("tiny", True),
    ]


async def test_quota_overrides_set_replace_and_clear(store: Store) -> None:
    user = await store.create_user(name="u", role="user", email=None)
    big = 10**12  # beyond 32 bits: tokens per month of a busy team
    first = QuotaOverride(user.id, tokens_per_day=100, tokens_per_month=big)
    assert await store.set_quota(first) == first
    assert await store.quota_overrides() == {user.id: first}
    second = QuotaOverride(user.id, requests_per_minute=UNLIMITED, max_concurrent=2)
    await store.set_quota(second)
    assert await store.quota_overrides() == {user.id: second}
    await store.set_quota(QuotaOverride(user.id))
    assert await store.quota_overrides() == {}


async def test_changes_from_another_connection_move_the_epoch_and_reload_the_index(
    backend: Backend,
) -> None:
    gateway = await backend.open()
    admin = await backend.open()  # stands for the CLI in another process
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
        for change in (
            admin.set_model_enabled("m", False),
            admin.set_quota(QuotaOverride(user.id, tokens_per_day=1)),
            admin.set_user_role("u", "admin"),
            admin.revoke_key(record.id),
        ):
            await change
            assert await watch.check() is True
    finally:
        await admin.close()
        await gateway.close()


async def test_expired_key_is_refused_from_memory(store: Store) -> None:
    hasher = KeyHasher(secret=b"s" * 32)
    user = await store.create_user(name="u", role="user", email=None)
    secret = generate_key()
    await store.create_key(
        user_id=user.id, key_hash=hasher.digest(secret), prefix="p", label=None, expires_at=1.0
    )
    index = KeyIndex(store=store, hasher=hasher)
    await index.reload()
    assert len(index) == 1
    assert index.lookup(secret) is None


async def test_key_limit_holds_across_connections(backend: Backend) -> None:
    """Two stores on one database (two gateway processes) creating keys at once for one user:
    the count and the insert are one write transaction, so neither goes past ``max_active``."""
    one, two = await backend.open(), await backend.open()
    try:
        user = await one.create_user(name="u", role="user", email=None)

        async def create(store: Store, n: int) -> bool:
            try:
                await store.create_key(
                    user_id=user.id,
                    key_hash=n.to_bytes(32, "big"),
                    prefix="p",
                    label=None,
                    expires_at=None,
                    max_active=5,
                )
            except ConflictError:
                return False
            return True

        made = await asyncio.gather(*(create((one, two)[n % 2], n) for n in range(20)))
        assert made.count(True) == 5
        keys = await one.list_keys(user.id)
        assert len(keys) == 5
        await two.revoke_key(keys[0].id)  # revoked keys do not count
        assert await create(one, 100) and not await create(two, 101)
    finally:
        await two.close()
        await one.close()
