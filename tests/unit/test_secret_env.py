"""The server secret from AUTHPROXY_SECRET (hex or base64) instead of the secret.key file."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from authproxy.auth.secret import SecretFileError, load_or_create_secret
from authproxy.config.load import load_config

SECRET = bytes(range(32))


@pytest.mark.parametrize(
    "text",
    [
        SECRET.hex(),
        SECRET.hex().upper() + "\n",
        base64.b64encode(SECRET).decode(),
        base64.urlsafe_b64encode(SECRET).decode().rstrip("="),
    ],
)
def test_the_variable_is_used_and_no_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("AUTHPROXY_SECRET", text)
    assert load_or_create_secret(tmp_path / "secret.key") == SECRET
    assert not (tmp_path / "secret.key").exists()


def test_the_variable_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "secret.key"
    from_file = load_or_create_secret(file)
    monkeypatch.setenv("AUTHPROXY_SECRET", SECRET.hex())
    assert from_file != SECRET
    assert load_or_create_secret(file, create=False) == SECRET


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not a secret!", "neither hex nor base64"),
        ("ab" * 16, "shorter than 32 bytes"),
        ("", "shorter"),
    ],
)
def test_a_bad_variable_is_one_clear_error_that_does_not_echo_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, problem: str
) -> None:
    monkeypatch.setenv("AUTHPROXY_SECRET", text)
    with pytest.raises(SecretFileError, match=problem) as failed:
        load_or_create_secret(tmp_path / "secret.key")
    assert str(failed.value).startswith("AUTHPROXY_SECRET: ")
    assert text not in str(failed.value) or not text


def test_the_variable_is_not_taken_for_a_config_key() -> None:
    config = load_config(None, env={"AUTHPROXY_SECRET": SECRET.hex()})
    assert config.database is None
