"""Debian's chromium, headless under Playwright, for the browser tests: launched with a
throwaway profile, allowed to reach loopback only, screenshots saved to `test-artifacts/`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Playwright, Route

from .llama_server import REPO_ROOT

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which("node") is None,
    reason="needs chromium and node (tests/setup/system_packages.sh installs them)",
)


def loopback_only(route: Route) -> None:
    """Nothing leaves this machine (the provider's page imports a web font, for one)."""
    host = urlsplit(route.request.url).hostname
    if host in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort()


def launch(pw: Playwright, profile: Path) -> BrowserContext:
    context = pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1100, "height": 900},
    )
    context.route("**/*", loopback_only)
    return context
