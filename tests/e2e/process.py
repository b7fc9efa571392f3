"""The lifecycle every real component of the end-to-end tier shares: a child process that is
stopped (SIGTERM, then SIGKILL if it lingers, and always reaped), with the tail of its log
for failure messages, and a context manager that stops it on exit.

``ChildProcess`` is for a component started explicitly (``start`` takes arguments known only
later); ``StartOnEnter`` also starts it on entering ``with`` (and stops it if starting fails).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, up to ``timeout`` seconds to exit, then SIGKILL; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def log_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file, or "" if there is none (yet)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ChildProcess:
    """One child process, in ``_proc`` while it runs; its output goes to ``log_path``."""

    stop_timeout = 10.0  # seconds from SIGTERM to SIGKILL
    tail_lines = 30  # lines of the log that failure messages quote

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def log_tail(self, lines: int | None = None) -> str:
        return log_tail(self.log_path, self.tail_lines if lines is None else lines)

    def stop(self, timeout: float | None = None) -> int | None:
        """Stop the process (if any) and return its exit code; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        return stop_process(proc, self.stop_timeout if timeout is None else timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class StartOnEnter(ChildProcess):
    """A child process that can start without arguments, so ``with`` starts it."""

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self
