"""The database remembers a fingerprint of the server secret: a gateway or a command with
another secret is refused before it could issue or check a key (both backends)."""

from __future__ import annotations

import pytest

from authproxy.store import SecretMismatchError
from authproxy.store.dispatch import FINGERPRINT_NAME, secret_fingerprint

from .conftest import Backend


async def test_the_first_secret_is_remembered_and_another_refused(backend: Backend) -> None:
    first = await backend.open(secret=b"a" * 32)
    await first.close()
    again = await backend.open(secret=b"a" * 32)
    await again.close()
    with pytest.raises(SecretMismatchError, match="same secret"):
        await backend.open(secret=b"b" * 32)
    # Opened without a secret (tests, `db copy`'s reading side): no check, nothing stored.
    plain = await backend.open()
    await plain.close()


async def test_the_fingerprint_is_stored_not_the_secret(backend: Backend) -> None:
    store = await backend.open(secret=b"k" * 32)
    try:
        claim = getattr(store, "claim_meta")  # noqa: B009 - on both backends, not in Store
        assert await claim(FINGERPRINT_NAME, 0) == secret_fingerprint(b"k" * 32)
        assert secret_fingerprint(b"k" * 32) != secret_fingerprint(b"l" * 32)
    finally:
        await store.close()
