"""Fixtures of the TUI tier: a seeded store under a fixed clock, the app on it, and `settle`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import ModalScreen

from admin_tui import AdminApp, create_app
from authproxy.admin.service import AdminService
from authproxy.cli.commands import admin_service
from authproxy.config.schema import Config, Listen

from .busy_gateway import busy_metrics_text, serving_metrics
from .seed import FakeClock, Seeded, freeze, predictable_keys, seed, tui_config

CLOSED_URL = "http://127.0.0.1:9"  # discard port: nothing listens, a probe is refused at once


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    freeze(monkeypatch, clock)
    predictable_keys(monkeypatch)
    return clock


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config.model_validate(tui_config(tmp_path / "data", CLOSED_URL))


@pytest.fixture
async def seeded(config: Config, clock: FakeClock) -> Seeded:
    return await seed(config, clock)


@pytest.fixture
async def service(seeded: Seeded) -> AsyncIterator[AdminService]:
    async with admin_service(seeded.config) as svc:
        svc.actor, svc.source = "tui:test", "local"
        yield svc


@pytest.fixture
def app(service: AdminService, clock: FakeClock) -> AdminApp:
    return create_app(service, clock=clock, refresh_interval=3600)


@pytest.fixture
async def busy_app(seeded: Seeded, clock: FakeClock) -> AsyncIterator[AdminApp]:
    """The app next to a gateway whose fair queue is busy (its /metrics, see busy_gateway)."""
    with serving_metrics(await busy_metrics_text()) as port:
        config = seeded.config.model_copy(update={"listen": Listen(port=port)})
        async with admin_service(config) as svc:
            svc.actor, svc.source = "tui:test", "local"
            yield create_app(svc, clock=clock, refresh_interval=3600)


@contextmanager
def service_outside_loop(config: Config) -> Iterator[AdminService]:
    """For snapshot tests (sync; the app runs its own loop): open the service on a loop of its
    own; aiosqlite answers on whichever loop awaits it."""
    loop = asyncio.new_event_loop()
    opened = admin_service(config)
    try:
        svc = loop.run_until_complete(opened.__aenter__())
        svc.actor, svc.source = "tui:test", "local"
        yield svc
    finally:
        loop.run_until_complete(opened.__aexit__(None, None, None))
        loop.close()


async def settle(pilot: Pilot[Any]) -> None:
    """Let every running worker finish (but not one waiting on an open dialog)."""
    app = pilot.app
    for _ in range(100):
        await pilot.pause()
        modal_open = isinstance(app.screen, ModalScreen)
        busy = [w for w in app.workers if w.is_running and not (modal_open and w.group == "action")]
        if not busy:
            return
        await app.workers.wait_for_complete(busy)
    raise AssertionError("workers did not settle")
