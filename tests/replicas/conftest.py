"""Fixtures of the replicas tier: a fake engine, and a PostgreSQL cluster of the test's own
for the tests that stop and start it (the session's cluster stays up for everyone else)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from fakes.engine import FakeEngine, running_engine
from pg.cluster import PostgresCluster


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    async with running_engine(models=["tiny", "big"]) as eng:
        yield eng


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield s
