"""Fixtures for the functional tier: a fake engine and the gateway in front of it, on sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from fakes.engine import FakeEngine, running_engine

from .browser import Browser, browser_gateway, signed_in
from .fake_idp import FakeIdp
from .helpers import Gateway, running_gateway


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    """A fake engine serving `tiny` and `big`."""
    async with running_engine(models=["tiny", "big"]) as eng:
        yield eng


@pytest.fixture
async def gateway(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[Gateway]:
    """The gateway in front of `engine`, with users root (admin), alice (user), rita
    (restricted: only `tiny`)."""
    async with running_gateway(tmp_path, engine.base_url) as gw:
        yield gw


@pytest.fixture
async def sso(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[tuple[Gateway, FakeIdp]]:
    """The gateway in front of `engine` with a fake OIDC provider for browser sign-in (a test
    module that needs other settings defines its own)."""
    async with browser_gateway(tmp_path, engine.base_url) as pair:
        yield pair


@pytest.fixture
async def web(sso: tuple[Gateway, FakeIdp]) -> AsyncIterator[Browser]:
    """A browser signed in through the provider of `sso` (the module's own, if it has one)."""
    async with signed_in(sso[0]) as b:
        yield b


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session; every request is bounded so that a hang fails instead of stalling."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        yield s
