"""In-memory index of the people a service key may name, by e-mail address.

Held like the key index: reloaded whenever the store changes (``store/watch.py``; a user's
creation, role, name or disabled flag moves the epoch, and an e-mail address is set only when
a user is made), so a request acting for someone never waits on the disk to find them.
"""

from __future__ import annotations

from authproxy.store.contracts import UserStore
from authproxy.store.records import User

__all__ = ["PeopleIndex"]


def _address(email: str) -> str:
    return email.strip().lower()


class PeopleIndex:
    def __init__(self, *, store: UserStore) -> None:
        self._store = store
        self._by_email: dict[str, tuple[User, ...]] = {}

    async def reload(self) -> None:
        by_email: dict[str, list[User]] = {}
        for user in await self._store.list_users():
            if user.email:
                by_email.setdefault(_address(user.email), []).append(user)
        self._by_email = {email: tuple(users) for email, users in by_email.items()}

    def find(self, email: str) -> tuple[User, ...]:
        """Every user with this e-mail address (case-insensitive): none, one, or — made by
        hand — several."""
        return self._by_email.get(_address(email), ())

    def add(self, user: User) -> None:
        """A user made a moment ago, known before the next reload."""
        if user.email:
            email = _address(user.email)
            others = tuple(u for u in self._by_email.get(email, ()) if u.id != user.id)
            self._by_email[email] = (*others, user)
