"""``authproxy engine run``: start an engine, wait until it is healthy, then stay its parent.

The engine runs as a child so that its health can be watched while it loads (with a progress
line), so that a missing binary, model file or busy port is one clear line instead of an
engine's stack trace, and so that systemd learns when it is *ready* (``READY=1`` on
``$NOTIFY_SOCKET``: the unit is ``Type=notify``). SIGTERM, SIGINT and SIGHUP are passed on to
the engine, whose exit status becomes ours.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import TextIO

from authproxy.engines.profile import HOST, EngineProfileError, Rendered

__all__ = ["EngineRunner", "health_status", "preflight", "resolve_binary", "sd_notify"]

# Health checks go straight to loopback, never through a proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def resolve_binary(program: str) -> str:
    """Absolute path of the engine executable, or one line that says how to fix it."""
    found = shutil.which(program)
    if found is None:
        where = "is not executable" if Path(program).exists() else "was not found"
        raise EngineProfileError(
            f"engine binary {program!r} {where}; install it or pass --set binary=/path/to/it"
        )
    return str(Path(found).absolute())


def preflight(rendered: Rendered) -> list[str]:
    """The argv with its binary resolved, after checking model files and the port."""
    binary = resolve_binary(rendered.argv[0])
    values, params = rendered.values, rendered.profile.params
    for name, param in params.items():
        value = values[name]
        if not value:
            continue
        local = value.startswith(("/", "./", "../", "~"))
        if param.type == "file" or (param.type == "model" and local):
            path = Path(value).expanduser()
            if param.type == "file" and not path.is_file():
                raise EngineProfileError(f"{name} file {value} does not exist")
            if not path.exists():
                raise EngineProfileError(f"{name} {value} does not exist")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: only a listener makes the port busy, not old connections in TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, rendered.port))
        except OSError:
            raise EngineProfileError(f"port {rendered.port} on {HOST} is already in use") from None
    return [binary, *rendered.argv[1:]]


def health_status(url: str) -> int | None:
    """HTTP status of the health URL, or None when nothing answers yet."""
    try:
        with _DIRECT.open(url, timeout=2) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def sd_notify(message: str) -> bool:
    """Tell systemd (``Type=notify``) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), target)
    return True


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class EngineRunner:
    """Runs one rendered engine as a child process (keyword-only: ``EngineRunner(rendered=…)``)."""

    def __init__(
        self, *, rendered: Rendered, timeout: float = 900.0, out: TextIO = sys.stderr
    ) -> None:
        self.rendered = rendered
        self.timeout = timeout
        self.out = out
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop_signal = 0

    def _say(self, text: str) -> None:
        print(f"authproxy: {text}", file=self.out, flush=True)

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_signal = signum
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signum)

    def run(self) -> int:
        argv = preflight(self.rendered)
        name = self.rendered.profile.name
        self._say(f"starting {name}: {' '.join(argv)}")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._forward)
        self._proc = subprocess.Popen(
            argv, env={**os.environ, **self.rendered.env}, stdin=subprocess.DEVNULL
        )
        started = time.monotonic()
        if not self._wait_healthy(started):
            return self._give_up(started)
        waited = time.monotonic() - started
        self._say(
            f"{name} is healthy at {self.rendered.base_url} after {waited:.1f}s"
            f" (model {self.rendered.served_name}); gateway upstream:"
            f" {{name: {name}, url: {self.rendered.base_url}, discover: true}}"
        )
        sd_notify(
            f"READY=1\nSTATUS=serving {self.rendered.served_name} at {self.rendered.base_url}"
        )
        code = self._proc.wait()
        sd_notify("STOPPING=1")
        self._say(f"{name} exited with status {_exit_code(code)}")
        return self._stop_status(code)

    def _wait_healthy(self, started: float) -> bool:
        assert self._proc is not None
        url = self.rendered.health_url
        next_note = started + 2.0
        last: int | None = None
        while time.monotonic() - started < self.timeout and not self._stop_signal:
            if self._proc.poll() is not None:
                return False
            last = health_status(url)
            if last == 200:
                return True
            now = time.monotonic()
            if now >= next_note:
                state = "not answering yet" if last is None else f"HTTP {last}, loading"
                self._say(f"waiting for {url}: {now - started:.0f}s, {state}")
                sd_notify(f"STATUS=loading ({now - started:.0f}s, {state})")
                next_note = now + 2.0
            time.sleep(0.2)
        return False

    def _stop_status(self, code: int) -> int:
        """Our exit status: 0 when the engine stopped cleanly because it was asked to."""
        asked = self._stop_signal
        if asked and code in (0, -asked, 128 + asked):
            return 0
        return _exit_code(code)

    def _reap(self, grace: float) -> int:
        assert self._proc is not None
        try:
            return self._proc.wait(grace)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return self._proc.wait()

    def _give_up(self, started: float) -> int:
        assert self._proc is not None
        name = self.rendered.profile.name
        if self._stop_signal:  # the engine got the signal already; a second one means "now"
            return self._stop_status(self._reap(30))
        code = self._proc.poll()
        if code is not None:
            self._say(f"{name} exited with status {_exit_code(code)} before it became healthy")
            return _exit_code(code) or 1
        self._say(f"{name} not healthy after {time.monotonic() - started:.0f}s; stopping it")
        self._proc.terminate()
        self._reap(30)
        return 1
