"""The install tier: the project as a newcomer gets it, never the source tree.

Once per session, a fresh copy of the tree runs the README's first command verbatim
(`python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/authproxy serve`: a real
install with its dependencies, through the pip cache), then its next steps (`authproxy init`,
a request with the key it printed). The tests then run that venv's console scripts from
temporary directories with an environment that can't reach the source.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from functional.helpers import KEY_RE, Secret, free_port

from .tree import copy_tree, user_env

INSTALL_DIR = Path(__file__).resolve().parent
INSTALL_TIMEOUT = 900.0  # a cold pip cache downloads every dependency


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(INSTALL_DIR):
            item.add_marker(pytest.mark.install)
            item.add_marker(pytest.mark.timeout(INSTALL_TIMEOUT + 120))


class Output:
    """A child's output lines, collected by a thread as they come."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.lines.append(raw.decode(errors="replace"))

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, proc: subprocess.Popen[bytes], within: float) -> None:
        deadline = time.monotonic() + within
        while not any(needle in line for line in self.lines):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "".join(self.lines[-30:])
                raise AssertionError(
                    f"no {needle!r} (exit {proc.poll()}); the output ends:\n{tail}"
                )
            time.sleep(0.1)

    def join(self) -> None:
        self._thread.join(10)


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def readme_first_command(readme: Path) -> str:
    """The first command of the README's first bash block."""
    block = readme.read_text(encoding="utf-8").split("```bash", 1)[1].split("```", 1)[0]
    return next(s for s in block.splitlines() if s.strip() and not s.startswith("#"))


@dataclass(frozen=True)
class ReadmeRun:
    tree: Path  # the fresh copy the README's commands ran in
    command: str
    output: str  # what the command printed: pip, then the gateway, until it was stopped
    seconds_to_serve: float  # from the command's start to "listening on"
    healthz: int
    init_printed_one_key: bool
    models_with_that_key: int  # the status of GET /v1/models with it

    @property
    def venv(self) -> Path:
        return self.tree / ".venv"


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group the command leads (bash and the gateway), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> ReadmeRun:
    tree = tmp_path_factory.mktemp("fresh-clone")
    copy_tree(tree)
    command = readme_first_command(tree / "README.md")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = user_env(AUTHPROXY_LISTEN__PORT=str(port))  # not 8400: the machine's, not ours
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=tree,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    output = Output(proc.stdout)
    try:
        output.wait_for("listening on", proc, within=INSTALL_TIMEOUT)
        took = time.monotonic() - started
        output.wait_for("authproxy init", proc, within=10)  # how to get a key
        healthz = http_status(base + "/healthz")
        # The README's next step, in "another terminal".
        init = subprocess.run(
            [str(tree / ".venv/bin/authproxy"), "init"],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = init.stdout.splitlines()
        key = Secret(lines[0] if lines else "")
        one_key = init.returncode == 0 and len(lines) == 1 and bool(KEY_RE.match(key))
        models = 0
        deadline = time.monotonic() + 5  # a running gateway sees a new key within a second
        while models != 200 and time.monotonic() < deadline:
            models = http_status(base + "/v1/models", {"Authorization": f"Bearer {key}"})
            time.sleep(0.1)
    finally:
        _stop_group(proc)
        output.join()
        proc.stdout.close()
    return ReadmeRun(tree, command, output.text(), took, healthz, one_key, models)


@pytest.fixture(scope="session")
def venv_bin(readme_run: ReadmeRun) -> Path:
    return readme_run.venv / "bin"
