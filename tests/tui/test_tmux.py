"""The TUI in a real terminal: tmux at 80x24, as over SSH, driven with send-keys.

``python -m admin_tui`` runs in its own process on a seeded store; the test reads the screen
with capture-pane. The tmux server is the test's own (a socket in its tmp dir), killed after.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from functional.helpers import cli_env, write_config

from .conftest import CLOSED_URL
from .seed import Seeded, tui_config

WIDTH, HEIGHT = 80, 24


class Tmux:
    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=cli_env() | {"TERM": "xterm-256color"},
            check=True,
        )
        return done.stdout

    def screen(self) -> list[str]:
        return self("capture-pane", "-p", "-t", "tui").splitlines()

    def wait_for(self, ready: Callable[[str], bool], within: float = 30.0) -> str:
        deadline = time.monotonic() + within
        while True:
            text = "\n".join(self.screen())
            if ready(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never got there; it shows:\n{text}")
            time.sleep(0.1)


@contextmanager
def tmux_session(command: list[str], cwd: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: run tests/setup/system_packages.sh")
    tmux = Tmux(cwd / "tmux.sock")  # a server of its own, nothing shared with the user's
    # The shell reports how the app ended and keeps the pane open for capture-pane.
    shell = f"cd {shlex.quote(str(cwd))} && {shlex.join(command)}; echo APP EXITED $?; sleep 60"
    tmux("new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-s", "tui", shell)
    try:
        yield tmux
    finally:
        subprocess.run(
            ["tmux", "-S", str(tmux.socket), "kill-server"], capture_output=True, timeout=10
        )


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
