"""The command line in real processes: what goes to stdout, one clear line on bad input."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import (
    KEY_RE,
    CliResult,
    Secret,
    run_cli,
    write_config,
)


@dataclass(frozen=True)
class Initialised:
    config: Path
    data_dir: Path
    init: CliResult


def _raw_config(data_dir: str = "data") -> dict[str, object]:
    return {
        "data_dir": data_dir,  # relative: to the config file, not to the cwd
        "upstreams": [{"name": "local", "url": "http://127.0.0.1:9", "models": ["tiny"]}],
        "roles": {"admin": {"models": ["*"]}, "user": {"models": ["tiny"]}},
    }


@pytest.fixture
async def initialised(tmp_path: Path) -> Initialised:
    config = write_config(tmp_path / "authproxy.yaml", _raw_config())
    result = await run_cli("--config", str(config), "init", cwd=tmp_path)
    return Initialised(config, tmp_path / "data", result)


def _one_error_line(result: CliResult) -> str:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("authproxy: "), lines
    return lines[0]


async def test_init_prints_only_the_key_and_makes_a_private_secret(
    initialised: Initialised,
) -> None:
    result = initialised.init
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    key = Secret(lines[0])
    assert KEY_RE.match(key)
    assert key not in result.stderr
    secret_file = initialised.data_dir / "secret.key"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((initialised.data_dir / "authproxy.db").stat().st_mode) == 0o600
    assert key not in (initialised.data_dir / "authproxy.db").read_bytes().decode("latin-1")

    again = await run_cli("--config", str(initialised.config), "init")
    assert "already initialised" in _one_error_line(again)


async def test_keys_create_prints_only_the_key(initialised: Initialised) -> None:
    cfg = str(initialised.config)
    first = await run_cli("--config", cfg, "keys", "create", "admin")
    second = await run_cli(
        "--config", cfg, "keys", "create", "admin", "--label", "ci", "--expires", "30d"
    )
    keys = []
    for result in (first, second):
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 1
        keys.append(Secret(lines[0]))
        assert KEY_RE.match(keys[-1])
    assert len({*keys, initialised.init.stdout.strip()}) == 3
    listed = await run_cli("--config", cfg, "keys", "list")
    assert listed.returncode == 0
    assert all(k not in listed.stdout and k[10:] not in listed.stdout for k in keys)


BAD_INPUT = {
    "unknown-user": ["keys", "create", "nobody"],
    "unknown-role": ["users", "add", "bob", "--role", "wizard"],
    "duplicate-user": ["users", "add", "admin"],
    "disable-unknown-user": ["users", "disable", "nobody"],
    "revoke-unknown-id": ["keys", "revoke", "9999"],
    "bad-expires": ["keys", "create", "admin", "--expires", "soon"],
    "zero-expires": ["keys", "create", "admin", "--expires", "0d"],
    "usage-bad-since": ["usage", "--since", "yesterday"],
    # Numbers: str.isdigit() is true for "²", int() takes "١" as 1, SQLite ends at 2**63 - 1.
    "revoke-superscript-id": ["keys", "revoke", "²"],
    "revoke-arabic-indic-id": ["keys", "revoke", "١"],  # not key 1
    "revoke-huge-id": ["keys", "revoke", "9" * 20],
    "audit-huge-limit": ["audit", "--limit", "9" * 20],
    "audit-negative-limit": ["audit", "--limit", "-5"],
    "quota-huge": ["users", "quota", "admin", "--rpm", "9" * 20],
    "expires-superscript": ["keys", "create", "admin", "--expires", "²d"],
    "expires-endless": ["keys", "create", "admin", "--expires", "9" * 30 + "d"],
    "expires-past-a-century": ["keys", "create", "admin", "--expires", "36501d"],
}


@pytest.mark.parametrize("args", list(BAD_INPUT.values()), ids=list(BAD_INPUT))
async def test_bad_input_is_one_line_and_non_zero(
    initialised: Initialised, args: list[str]
) -> None:
    cfg = str(initialised.config)
    _one_error_line(await run_cli("--config", cfg, *args))
    listed = await run_cli("--config", cfg, "keys", "list", "--json")  # nothing changed
    assert listed.returncode == 0, listed.stderr
    assert [(k["id"], k["revoked_at"]) for k in json.loads(listed.stdout)] == [(1, None)]


async def test_revoking_twice_is_one_clear_line(initialised: Initialised) -> None:
    cfg = str(initialised.config)
    ok = await run_cli("--config", cfg, "keys", "revoke", "1")
    assert ok.returncode == 0, ok.stderr
    assert "already revoked" in _one_error_line(
        await run_cli("--config", cfg, "keys", "revoke", "1")
    )


async def test_commands_before_init_say_so(tmp_path: Path) -> None:
    config = write_config(tmp_path / "authproxy.yaml", _raw_config())
    line = _one_error_line(await run_cli("--config", str(config), "keys", "list"))
    assert "authproxy init" in line
    assert not (tmp_path / "data" / "secret.key").exists()


async def test_malformed_arguments_are_one_line_too(initialised: Initialised) -> None:
    _one_error_line(await run_cli("--config", str(initialised.config), "keys", "revoke", "abc"))


async def test_check_config_reports_every_problem(tmp_path: Path) -> None:
    raw = {
        **_raw_config(),
        "upstreams": [{"name": "local", "url": "not-a-url", "models": ["tiny"]}],
        "listen": {"port": 99999},
        "bogus": 1,
    }
    config = write_config(tmp_path / "bad.yaml", raw)
    result = await run_cli("--config", str(config), "check-config", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{config}: 3 problem(s)"
    problems = sorted(line.strip() for line in lines[1:])
    assert len(problems) == 3
    assert problems[0].startswith("bogus: unknown key")
    assert problems[1].startswith("listen.port: ")
    assert problems[2].startswith("upstreams[0].url: not a URL")

    good = write_config(tmp_path / "good.yaml", _raw_config())
    result = await run_cli("--config", str(good), "check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 1 upstream(s)")
