"""`authproxy admin` and `python -m admin_tui` outside a terminal: one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from functional.helpers import AUTHPROXY, cli_env, run_cli, write_config

from .conftest import CLOSED_URL
from .seed import tui_config


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
