"""In-memory index of every usable key, kept in step with the store.

The whole set of active keys (hash -> owner) is held in memory and reloaded whenever the store
changes (see ``store/watch.py``). A request never touches the disk, and an unknown key costs exactly
what a known one does (one HMAC, one dict lookup), so a flood of invalid keys cannot load the
database and there is no timing difference to learn from.
"""

from __future__ import annotations

from authproxy.auth.keys import KeyHasher, looks_like_key
from authproxy.clock import now
from authproxy.store.contracts import KeyStore
from authproxy.store.records import ActiveKey

__all__ = ["KeyIndex"]


class KeyIndex:
    def __init__(self, *, store: KeyStore, hasher: KeyHasher) -> None:
        self._store = store
        self._hasher = hasher
        self._by_hash: dict[bytes, ActiveKey] = {}
        self._last_used: dict[int, float] = {}

    async def reload(self) -> None:
        keys = await self._store.active_keys()
        self._by_hash = {k.key_hash: k for k in keys}

    def __len__(self) -> int:
        return len(self._by_hash)

    def lookup(self, key: str) -> ActiveKey | None:
        """The active, unexpired key record for ``key``, or None."""
        if not looks_like_key(key):
            return None
        record = self._by_hash.get(self._hasher.digest(key))
        if record is None:
            return None
        t = now()
        if record.expires_at is not None and record.expires_at <= t:
            return None
        self._last_used[record.key_id] = t
        return record

    def take_last_used(self) -> dict[int, float]:
        """Hand over (and forget) the last-use times gathered since the previous call."""
        taken, self._last_used = self._last_used, {}
        return taken
