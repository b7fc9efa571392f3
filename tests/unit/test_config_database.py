"""The `database` key: null (SQLite in data_dir) or a postgresql:// URL, from the file or from
AUTHPROXY_DATABASE; its password never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from authproxy.config.load import ConfigError, load_config


def test_database_comes_from_the_file_or_the_environment(tmp_path: Path) -> None:
    url = "postgresql://gw:pw@db.internal:5432/authproxy"
    assert load_config(None, env={"AUTHPROXY_DATABASE": url}).store_location == url
    file = tmp_path / "authproxy.yaml"
    file.write_text(f"database: {url}\n")
    config = load_config(file, env={})
    assert config.store_location == url
    assert "pw" not in repr(config)
    assert load_config(None, env={}).store_location == Path("data") / "authproxy.db"


def test_a_database_that_is_not_postgresql_is_refused_without_echoing_it(tmp_path: Path) -> None:
    file = tmp_path / "authproxy.yaml"
    file.write_text("database: mysql://root:hunter2@db/x\n")
    with pytest.raises(ConfigError) as refused:
        load_config(file, env={})
    assert refused.value.problems == [
        "database: want a postgresql://… URL, or null for SQLite in data_dir"
    ]
    assert "hunter2" not in str(refused.value)
