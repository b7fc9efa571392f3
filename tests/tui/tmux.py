"""A tmux server of a test's own (a socket in its tmp dir) running one command at 80x24, as
over SSH; the screen is read with capture-pane and driven with send-keys."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from functional.helpers import cli_env

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
