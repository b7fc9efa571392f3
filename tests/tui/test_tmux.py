"""The TUI in a real terminal: tmux at 80x24, as over SSH, driven with send-keys.

``python -m admin_tui`` runs in its own process on a seeded store; the test reads the screen
with capture-pane. The tmux server is the test's own (a socket in its tmp dir), killed after.
"""

from __future__ import annotations

import sys
from pathlib import Path

from functional.helpers import write_config

from .conftest import CLOSED_URL
from .seed import Seeded, tui_config
from .tmux import HEIGHT, WIDTH, tmux_session


def test_users_screen_over_a_real_terminal(seeded: Seeded, tmp_path: Path) -> None:
    raw = tui_config(seeded.config.data_dir, CLOSED_URL)
    config_path = write_config(tmp_path / "authproxy.yaml", raw)
    command = [sys.executable, "-m", "admin_tui", "--config", str(config_path)]
    with tmux_session(command, tmp_path) as tmux:
        assert tmux("display", "-p", "-t", "tui", "#{pane_width}x#{pane_height}").strip() == (
            f"{WIDTH}x{HEIGHT}"
        )
        tmux.wait_for(lambda s: "Upstreams" in s and "local down" in s)  # the dashboard
        tmux("send-keys", "-t", "tui", "u")
        text = tmux.wait_for(lambda s: "Tokens today" in s and "alice" in s)
        lines = tmux.screen()
        assert len(lines) <= HEIGHT and all(len(line) <= WIDTH for line in lines)
        assert "u Users" in lines[0]
        rows = {line.split()[0]: line.split() for line in lines[3:8] if line.strip()}
        assert rows["alice"][:3] == ["alice", "user", "active"]
        assert rows["dave"][2] == "disabled"
        assert set(rows) == {"alice", "bob", "dave", "root"}
        assert "n Add" in lines[-1] and "q Quota" in lines[-1], text

        tmux("send-keys", "-t", "tui", "C-q")
        ended = tmux.wait_for(lambda s: "APP EXITED" in s, within=15)
        assert "APP EXITED 0" in ended and "Traceback" not in ended


def test_before_init_it_says_so_in_one_line(tmp_path: Path) -> None:
    raw = tui_config(tmp_path / "data", CLOSED_URL)
    config_path = write_config(tmp_path / "authproxy.yaml", raw)
    command = [str(Path(sys.executable).with_name("authproxy")), "admin"]
    with tmux_session([*command, "--config", str(config_path)], tmp_path) as tmux:
        text = tmux.wait_for(lambda s: "APP EXITED" in s)
    assert "authproxy: no database at" in text and "run `authproxy init` first" in text
    assert "APP EXITED 1" in text and "Traceback" not in text
