"""Every store test runs against both backends: SQLite in a temporary file and PostgreSQL in a
fresh database of the throwaway cluster (tests/pg). A test asks for `store` (one open store) or
for `backend` (to open several stores on the same database, as separate processes would)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from authproxy.store import Store, open_store


@dataclass(frozen=True)
class Backend:
    name: str
    where: Path | str  # the SQLite file, or the PostgreSQL URL

    async def open(self, *, secret: bytes | None = None) -> Store:
        return await open_store(self.where, secret=secret)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path / "a.db")
    return Backend("postgresql", request.getfixturevalue("pg_database"))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()
