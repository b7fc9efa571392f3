"""API keys: ``sk-`` + 43 url-safe characters (256 random bits), stored only as HMAC-SHA256."""

from __future__ import annotations

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
        self._secret = secret

    def digest(self, key: str) -> bytes:
        return hmac.digest(self._secret, key.encode(), "sha256")  # one call into OpenSSL
