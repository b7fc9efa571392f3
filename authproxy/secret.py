"""The server secret that keys are hashed under; it lives beside, never inside, the database."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

SECRET_BYTES = 32


class SecretFileError(Exception):
    pass


def load_or_create_secret(path: Path, *, create: bool = True) -> bytes:
    """Return the secret in ``path``; make it (mode 0600) when missing and ``create`` is true."""
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
