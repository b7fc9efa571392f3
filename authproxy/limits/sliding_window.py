"""Events per key within a sliding window of the monotonic clock: the one counter behind the
quota's requests per minute, the throttle on failed authentications and the password-login
limiter.

A key's events are kept oldest first and forgotten once ``window`` seconds old. With
``max_keys`` the table is bounded, so a flood of new keys (addresses, user names) cannot grow
memory: a new key that finds it full first drops every key with nothing recent, then, if that
freed nothing, the ``evict`` keys that came first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

__all__ = ["Hit", "SlidingWindow"]

KeyT = TypeVar("KeyT", bound=Hashable)


class Hit:
    """One counted event (an object, so that exactly this one can be taken back)."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at  # time.monotonic() when it happened


class SlidingWindow(Generic[KeyT]):
    def __init__(self, *, window: float, max_keys: int | None = None, evict: int = 1) -> None:
        self.window = window
        self._max_keys = max_keys
        self._evict = evict
        self._hits: dict[KeyT, deque[Hit]] = {}

    def __len__(self) -> int:
        """Keys tracked now."""
        return len(self._hits)

    def recent(self, key: KeyT, now: float) -> Sequence[Hit]:
        """``key``'s events of the last ``window`` seconds before ``now``, oldest first."""
        hits = self._hits.get(key)
        if hits is None:
            return ()
        while hits and hits[0].at <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return ()
        return hits

    def retry_after(self, key: KeyT, limit: int, now: float) -> float:
        """Seconds until ``key`` has fewer than ``limit`` recent events (0: it has now)."""
        hits = self.recent(key, now)
        if len(hits) < limit:
            return 0.0
        return hits[-limit].at + self.window - now

    def add(self, key: KeyT, hit: Hit) -> None:
        """Count ``hit`` for ``key``; a hit counted already is not counted twice."""
        hits = self._hits.get(key)
        if hits is not None and any(h is hit for h in hits):
            return
        self.add_new(key, hit)

    def add_new(self, key: KeyT, hit: Hit) -> None:
        """Count ``hit``, made just now, for ``key``: no look for it among the key's events
        (``add`` scans them all, which a user allowed thousands of requests a minute would
        pay on every request)."""
        hits = self._hits.get(key)
        if hits is None:
            self._make_room(hit.at)
            hits = self._hits[key] = deque()
        hits.append(hit)

    def remove(self, key: KeyT, hit: Hit) -> None:
        """Take back exactly ``hit`` (an event that turned out not to count)."""
        hits = self._hits.get(key)
        if hits is None:
            return
        for index, held in enumerate(hits):
            if held is hit:
                del hits[index]
                break
        if not hits:
            del self._hits[key]

    def clear(self, key: KeyT) -> None:
        """Forget every event of ``key``."""
        self._hits.pop(key, None)

    def _make_room(self, now: float) -> None:
        if self._max_keys is None or len(self._hits) < self._max_keys:
            return
        horizon = now - self.window
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1].at <= horizon]:
            del self._hits[key]
        if len(self._hits) >= self._max_keys:  # all recent: a wide flood; drop the first comers
            for key in list(self._hits)[: self._evict]:
                del self._hits[key]
