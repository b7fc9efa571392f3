"""`authproxy admin` and `python -m admin_tui` outside a terminal: one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from functional.helpers import AUTHPROXY, cli_env, run_cli, write_config
from textual.app import App

from admin_tui import launch
from authproxy.admin.service import AdminError
from authproxy.config.schema import Config

from .conftest import CLOSED_URL
from .seed import Seeded, tui_config


async def test_without_a_terminal_it_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path / "authproxy.yaml", tui_config(tmp_path / "data", CLOSED_URL))
    result = await run_cli("--config", str(config), "admin")  # stdin is /dev/null
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        "authproxy: the admin UI needs a terminal (use the other commands in scripts)\n"
    )


def test_module_entry_point_is_the_admin_subcommand() -> None:
    helps = [
        subprocess.run(
            [*argv, "--help"], capture_output=True, text=True, env=cli_env(), timeout=60, check=True
        ).stdout
        for argv in ([sys.executable, "-m", "admin_tui"], [AUTHPROXY, "admin"])
    ]
    assert helps[0] == helps[1]
    assert "--screen {dashboard,users,keys,models,audit}" in helps[0]


async def test_an_app_that_ends_on_an_error_is_an_error_of_the_command(
    config: Config, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Textual shows a crash and returns; `authproxy admin` must not then exit 0 (a missing
    stylesheet in the wheel once crashed it for every installed user, silently)."""

    class Crashing(App[None]):
        def on_mount(self) -> None:
            raise RuntimeError("injected")

    monkeypatch.setattr(launch, "create_app", lambda service, start: Crashing())
    with pytest.raises(AdminError, match="stopped on an error"):
        await launch.run_admin(config, headless=True)


async def test_an_app_that_ends_well_is_no_error(
    config: Config, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Quits(App[None]):
        def on_mount(self) -> None:
            self.exit()

    monkeypatch.setattr(launch, "create_app", lambda service, start: Quits())
    await launch.run_admin(config, headless=True)  # no AdminError
