from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest

from authproxy.auth.keys import KeyHasher, display_prefix, generate_key, looks_like_key
from authproxy.auth.secret import SecretFileError, load_or_create_secret
from authproxy.text import parse_duration


def test_keys_have_256_random_bits_in_43_url_safe_characters() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert looks_like_key(key), key
        assert len(key) == 3 + 43


@pytest.mark.parametrize(
    "value", ["", "sk-", "sk-short", "pk-" + "a" * 43, "sk-" + "a" * 42 + "!", "sk-" + "a" * 44]
)
def test_malformed_keys_are_rejected_before_hashing(value: str) -> None:
    assert not looks_like_key(value)


def test_hash_depends_on_the_secret() -> None:
    key = generate_key()
    a = KeyHasher(secret=b"a" * 32).digest(key)
    b = KeyHasher(secret=b"b" * 32).digest(key)
    assert a != b and len(a) == 32
    assert KeyHasher(secret=b"a" * 32).digest(key) == a


def test_the_hash_is_hmac_sha256_so_keys_stored_before_still_match() -> None:
    # Keys issued by earlier versions were stored as HMAC-SHA256(secret, key): a copy of the
    # keyed state must give the very same digest, every time, for every key.
    secret = os.urandom(32)
    hasher = KeyHasher(secret=secret)
    for _ in range(20):
        key = generate_key()
        assert hasher.digest(key) == hmac.new(secret, key.encode(), hashlib.sha256).digest()
        assert hasher.digest(key) == hasher.digest(key)


def test_display_prefix_reveals_only_a_few_characters() -> None:
    key = generate_key()
    assert display_prefix(key) == key[:9]


def test_secret_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    first = load_or_create_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert len(first) == 32


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    load_or_create_secret(path)
    os.chmod(path, 0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        load_or_create_secret(path)


def test_missing_secret_without_create(tmp_path: Path) -> None:
    with pytest.raises(SecretFileError, match="authproxy init"):
        load_or_create_secret(tmp_path / "secret.key", create=False)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("30d", 2592000)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "0d", "1y", "1.5d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
