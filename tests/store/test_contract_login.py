"""The store contract for browser login (sessions, pending OIDC logins, subjects, password
hashes), on both backends (see conftest.py)."""

from __future__ import annotations

import pytest

from authproxy.clock import now
from authproxy.store import ConflictError, NotFoundError, Store
from authproxy.store.records import LoginFlow


async def test_sessions_follow_their_user(store: Store) -> None:
    alice = await store.create_user(name="alice", role="user", email=None)
    bob = await store.create_user(name="bob", role="admin", email=None)
    far = now() + 3600
    first = await store.create_session(
        id_hash=b"1" * 32,
        user_id=alice.id,
        via="oidc",
        expires_at=far,
        source="10.0.0.1",
        user_agent="curl/8",
    )
    second = await store.create_session(
        id_hash=b"2" * 32,
        user_id=alice.id,
        via="password",
        expires_at=far,
        source=None,
        user_agent=None,
    )
    await store.create_session(
        id_hash=b"3" * 32,
        user_id=bob.id,
        via="password",
        expires_at=far,
        source=None,
        user_agent=None,
    )
    found = await store.find_session(b"1" * 32)
    assert found is not None
    assert (found.id, found.user_name, found.role, found.via) == (first, "alice", "user", "oidc")
    assert (found.source, found.user_agent, found.expires_at) == ("10.0.0.1", "curl/8", far)
    assert found.created_at == found.last_seen_at
    assert await store.find_session(b"x" * 32) is None

    await store.touch_session(first, found.created_at + 5)
    touched = await store.find_session(b"1" * 32)
    assert touched is not None and touched.last_seen_at == found.created_at + 5

    await store.set_user_disabled("alice", True)
    disabled = await store.find_session(b"2" * 32)
    assert disabled is not None and disabled.user_disabled is True

    assert [s.id for s in await store.list_sessions(alice.id)] == [first, second]
    assert len(await store.list_sessions()) == 3
    assert await store.delete_session(b"2" * 32) is True
    assert await store.delete_session(b"2" * 32) is False
    assert await store.delete_user_sessions(alice.id) == 1
    assert await store.delete_user_sessions(alice.id) == 0
    assert [s.user_name for s in await store.list_sessions()] == ["bob"]


async def test_purge_ends_expired_and_idle_sessions(store: Store) -> None:
    user = await store.create_user(name="u", role="user", email=None)
    t = now()
    for i, expires in enumerate((t - 1, t + 3600, t + 3600)):
        sid = await store.create_session(
            id_hash=bytes([i]) * 32,
            user_id=user.id,
            via="password",
            expires_at=expires,
            source=None,
            user_agent=None,
        )
        if i == 2:
            await store.touch_session(sid, t + 100)
    # The first is past its end, the second idle since before t + 50, the third fresh.
    assert await store.purge_sessions(idle_before=t + 50) == 2
    assert [s.last_seen_at for s in await store.list_sessions()] == [t + 100]


async def test_a_login_flow_works_once(store: Store) -> None:
    flow = LoginFlow(b"b" * 32, "nonce", "verifier", "/account", 100.0)
    await store.put_login_flow(b"s" * 32, flow)
    await store.put_login_flow(b"t" * 32, LoginFlow(b"c" * 32, "n", "v", "/", 200.0))
    assert await store.take_login_flow(b"s" * 32) == flow
    assert await store.take_login_flow(b"s" * 32) is None
    assert await store.purge_login_flows(before=150.0) == 0
    assert await store.purge_login_flows(before=200.0) == 1
    assert await store.take_login_flow(b"t" * 32) is None


async def test_oidc_subjects_link_one_user_each(store: Store) -> None:
    alice = await store.create_user(name="alice", role="user", email=None)
    bob = await store.create_user(name="bob", role="user", email=None)
    assert await store.user_by_subject("sub-1") is None
    assert await store.subject_of(alice.id) is None
    await store.link_subject(alice.id, "sub-1")
    assert await store.user_by_subject("sub-1") == alice
    assert await store.subject_of(alice.id) == "sub-1"
    with pytest.raises(ConflictError):
        await store.link_subject(bob.id, "sub-1")
    assert await store.subject_of(bob.id) is None
    assert await store.subject_of(999) is None


async def test_password_hashes(store: Store) -> None:
    user = await store.create_user(name="u", role="user", email=None)
    assert await store.password_hash("u") == (user, None)
    assert await store.set_password_hash("u", "$argon2id$x") == user
    assert await store.password_hash("u") == (user, "$argon2id$x")
    await store.set_password_hash("u", None)
    assert await store.password_hash("u") == (user, None)
    with pytest.raises(NotFoundError):
        await store.password_hash("nobody")
    with pytest.raises(NotFoundError):
        await store.set_password_hash("nobody", "x")
