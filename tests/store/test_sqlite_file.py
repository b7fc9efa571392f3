"""What only the SQLite backend has: a private WAL file and `PRAGMA user_version`."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from authproxy.store import StoreError, open_store
from authproxy.store.migrations import MIGRATIONS


async def test_schema_wal_and_private_file(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    await store.close()
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert stat.S_IMODE((tmp_path / "a.db").stat().st_mode) == 0o600


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        await open_store(tmp_path / "a.db")


async def test_a_string_that_is_not_a_postgresql_url_is_refused_naming_the_key() -> None:
    with pytest.raises(StoreError, match=r"^database: want a postgresql://"):
        await open_store("mysql://u:p@h/db")
