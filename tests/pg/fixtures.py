"""Pytest fixtures over the throwaway cluster (``cluster.py``), loaded by ``tests/conftest.py``
for every tier: one server per test session, started only if a test asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from .cluster import PostgresCluster


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of one database for the whole session (for tests that only read)."""
    return postgres_cluster.create_database("session")


@pytest.fixture
def pg_database(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The URL of a fresh, empty database for this test alone, dropped afterwards."""
    url = postgres_cluster.create_database()
    yield url
    postgres_cluster.drop_database(urlsplit(url).path.lstrip("/"))
