"""The server secret that keys are hashed under; it lives beside, never inside, the database.

It is the ``secret.key`` file in ``data_dir`` (made by the first ``authproxy init``), or the
``AUTHPROXY_SECRET`` environment variable (hex, as in the file, or base64) where several gateways
share one database and must share the secret too. The variable wins over the file.

``ServerSecret`` is the one place it is loaded from and what is derived from it is made: the
key hasher, and subkeys for other purposes (the CSRF tokens').
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import stat
from pathlib import Path

from authproxy.auth.keys import KeyHasher

__all__ = ["ENV_SECRET", "SECRET_BYTES", "SecretFileError", "ServerSecret", "load_or_create_secret"]

SECRET_BYTES = 32
ENV_SECRET = "AUTHPROXY_SECRET"  # noqa: S105 - the name of the variable


class SecretFileError(Exception):
    pass


class ServerSecret:
    """The server secret, loaded once, and what is derived from it."""

    def __init__(self, *, value: bytes) -> None:
        self.value = value
        self.hasher = KeyHasher(secret=value)  # API keys are stored as HMACs under it

    @classmethod
    def load(cls, path: Path, *, create: bool = True) -> ServerSecret:
        """``$AUTHPROXY_SECRET``, else the file at ``path`` (made when missing and ``create``)."""
        return cls(value=load_or_create_secret(path, create=create))

    def subkey(self, purpose: str) -> bytes:
        """A key of its own for ``purpose``: nothing else is ever keyed with the secret itself."""
        return hmac.new(self.value, f"authproxy {purpose} v1".encode(), hashlib.sha256).digest()


def load_or_create_secret(path: Path, *, create: bool = True) -> bytes:
    """Return ``$AUTHPROXY_SECRET`` if set, else the secret in ``path``; make the file (mode
    0600) when missing and ``create`` is true."""
    if ENV_SECRET in os.environ:
        return _from_env(os.environ[ENV_SECRET])
    try:
        return _read(path)
    except FileNotFoundError:
        if not create:
            raise SecretFileError(f"{path}: missing (run `authproxy init` first)") from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_bytes(SECRET_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)  # another process made it first
    with os.fdopen(fd, "wb") as fh:
        fh.write(value.hex().encode() + b"\n")
    return value


def _from_env(text: str) -> bytes:
    """Hex (``openssl rand -hex 32``, or a copy of ``secret.key``) or base64; never echoed."""
    text = text.strip()
    try:
        if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
            value = bytes.fromhex(text)
        else:
            padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
            value = base64.b64decode(padded, validate=True)
    except (ValueError, binascii.Error):
        raise SecretFileError(f"{ENV_SECRET}: neither hex nor base64") from None
    if len(value) < SECRET_BYTES:
        raise SecretFileError(f"{ENV_SECRET}: secret shorter than {SECRET_BYTES} bytes")
    return value


def _read(path: Path) -> bytes:
    info = path.stat()
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(f"{path}: readable by others; run `chmod 600 {path}`")
    text = path.read_text(encoding="ascii").strip()
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise SecretFileError(f"{path}: not a hex secret") from None
    if len(value) < SECRET_BYTES:
        raise SecretFileError(f"{path}: secret shorter than {SECRET_BYTES} bytes")
    return value
