"""The store contract for stored responses' owners, on both backends (see conftest.py)."""

from __future__ import annotations

from authproxy.store import Store
from authproxy.store.records import ResponseOwner


async def test_the_first_creator_keeps_an_id_and_forgetting_ends_it(store: Store) -> None:
    alice = await store.create_user(name="alice", role="user", email=None)
    bob = await store.create_user(name="bob", role="user", email=None)
    first = ResponseOwner("resp_abc", alice.id, "tiny", "local", 100.5)
    assert await store.response_owner("resp_abc") is None
    await store.record_response(first)
    assert await store.response_owner("resp_abc") == first
    # An engine that hands out the same id again does not hand it to someone else.
    await store.record_response(ResponseOwner("resp_abc", bob.id, "big", "other", 200.0))
    assert await store.response_owner("resp_abc") == first
    assert await store.response_owner("RESP_ABC") is None  # ids compare byte for byte
    await store.forget_response("resp_abc")
    assert await store.response_owner("resp_abc") is None
    await store.forget_response("resp_abc")  # forgetting twice is no error
