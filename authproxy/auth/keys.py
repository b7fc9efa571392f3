"""API keys: ``sk-`` + 43 url-safe characters (256 random bits), stored only as HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = [
    "DISPLAY_CHARS",
    "KEY_BODY_LEN",
    "KEY_PREFIX",
    "KeyHasher",
    "display_prefix",
    "generate_key",
    "looks_like_key",
]

KEY_PREFIX = "sk-"
KEY_BODY_LEN = 43
DISPLAY_CHARS = 6
_KEY_RE = re.compile(r"^sk-[A-Za-z0-9_-]{43}$")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(value: str) -> bool:
    return bool(_KEY_RE.match(value))


def display_prefix(key: str) -> str:
    """What lists show: enough to tell keys apart, far too little to guess one."""
    return key[: len(KEY_PREFIX) + DISPLAY_CHARS]


class KeyHasher:
    """HMAC-SHA256 under the server secret: a stolen database alone yields no usable key."""

    def __init__(self, *, secret: bytes) -> None:
        # Keyed once; each digest copies the keyed state. (``hmac.digest`` re-keys every time
        # and releases the GIL around OpenSSL's HMAC: under load the event loop then waits to
        # get it back from the database thread, ~15 µs a request instead of ~1.)
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def digest(self, key: str) -> bytes:
        mac = self._keyed.copy()
        mac.update(key.encode())
        return mac.digest()
