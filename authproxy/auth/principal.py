"""Who a request acts as, once authenticated."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    user_name: str
    role: str
    key_id: int | None  # None for a browser session or an IdP token
    via: str  # "key", "session" or "jwt"
    # The credential is a service key (``keys create --acts-for-users``): it may name a person.
    acts_for_users: bool = False
    # Set when a service key acts for a person: the service key's own user. The fields above
    # are then the person's (``key_id`` stays the service key's: the usage row names both).
    service: str | None = None
