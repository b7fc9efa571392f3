"""Fixtures for the end-to-end tier: a real llama-server serving the tiny test model, and a
headless chromium for the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

from .chromium import launch
from .coding_agents import llama_server_for_agents
from .llama_server import LlamaServer
from .tiny_model import write_tiny_model

E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected under tests/e2e with ``pytest.mark.e2e``."""
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight GGUF model, written once per session."""
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.gguf")


@pytest.fixture(scope="session")
def llama_server(tiny_model_path: Path) -> Iterator[LlamaServer]:
    """A llama-server on 127.0.0.1 serving the tiny model as ``tiny`` (2 slots)."""
    with LlamaServer(tiny_model_path) as server:
        yield server


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """Chromium, headless, with a fresh profile; it reaches loopback only."""
    with sync_playwright() as pw:
        context = launch(pw, tmp_path / "chromium-profile")
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def agents_llama(tiny_model_path: Path) -> Iterator[LlamaServer]:
    """A llama-server on which the coding agents complete a turn (coding_agents.py)."""
    with llama_server_for_agents(tiny_model_path) as server:
        yield server
