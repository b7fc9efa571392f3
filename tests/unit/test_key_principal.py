"""A key's principal is made once per key record, and never outlives the record it came from."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import make_mocked_request

from authproxy.auth.authenticate import ApiKeyAuthenticator
from authproxy.auth.key_index import KeyIndex
from authproxy.auth.keys import KeyHasher, generate_key
from authproxy.store import open_store
from authproxy.store.watch import StoreWatch


async def test_a_role_change_reaches_the_next_request_of_a_known_key(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    try:
        hasher = KeyHasher(secret=b"s" * 32)
        index = KeyIndex(store=store, hasher=hasher)
        auth = ApiKeyAuthenticator(index=index, watch=StoreWatch(store=store))
        user = await store.create_user(name="alice", role="user", email=None)
        secret = generate_key()
        await store.create_key(
            user_id=user.id, key_hash=hasher.digest(secret), prefix="p", label=None, expires_at=None
        )
        await index.reload()
        headers = {"Authorization": f"Bearer {secret}"}
        request = make_mocked_request("POST", "/v1/x", headers=headers)

        first = await auth.authenticate(request)
        again = await auth.authenticate(request)
        assert first is not None and first.role == "user" and first.user_name == "alice"
        assert again is first  # the same record: the same principal

        await store.set_user_role("alice", "admin")
        await index.reload()
        changed = await auth.authenticate(request)
        assert changed is not None
        assert (changed.role, changed.user_id, changed.key_id) == ("admin", user.id, first.key_id)
    finally:
        await store.close()
