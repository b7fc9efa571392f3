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
