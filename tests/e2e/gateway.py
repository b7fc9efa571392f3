"""Run the real gateway (`authproxy serve`) as a subprocess, the way a user does."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from .llama_server import free_port
from .process import StartOnEnter

AUTHPROXY = [sys.executable, "-m", "authproxy"]


def clean_env() -> dict[str, str]:
    """This environment without AUTHPROXY_* variables, which would override the test config."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AUTHPROXY_")}


def cli(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run an `authproxy` command in another process, against the same config and database."""
    return subprocess.run(
        [*AUTHPROXY, "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=clean_env(),
    )


class Gateway(StartOnEnter):
    stop_timeout = 40.0  # its own shutdown grace drains streams first
    tail_lines = 40

    def __init__(self, *, workdir: Path, settings: dict[str, Any], port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.config = workdir / "authproxy.yaml"
        body = {"listen": {"host": "127.0.0.1", "port": self.port}, "data_dir": "data"}
        self.config.write_text(yaml.safe_dump({**body, **settings}))
        super().__init__(workdir / "gateway.log")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, stdin: str | None = None) -> str:
        """A CLI command that must succeed; returns its stdout."""
        done = cli(self.config, *args, stdin=stdin)
        if done.returncode != 0:
            raise AssertionError(f"authproxy {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def add_user(self, name: str, *, role: str | None = None) -> str:
        """A new user (the default role unless ``role``) and a key of theirs."""
        self.run("users", "add", name, *(("--role", role) if role else ()))
        return self.run("keys", "create", name).strip()

    def usage_rows(self, user: str, want: int = 0, within: float = 10.0) -> list[dict[str, Any]]:
        """``user``'s usage rows, oldest first, once there are ``want`` (or ``within`` passed)."""
        deadline = time.monotonic() + within
        while True:
            db = sqlite3.connect(self.workdir / "data" / "authproxy.db")
            db.row_factory = sqlite3.Row
            try:
                rows = [
                    dict(r)
                    for r in db.execute(
                        "SELECT usage.* FROM usage JOIN users ON users.id = usage.user_id"
                        " WHERE users.name = ? ORDER BY usage.id",
                        (user,),
                    )
                ]
            finally:
                db.close()
            if len(rows) >= want or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [*AUTHPROXY, "--config", str(self.config), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**clean_env(), "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise AssertionError(f"gateway exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"gateway not healthy within {timeout}s:\n{self.log_tail()}")
