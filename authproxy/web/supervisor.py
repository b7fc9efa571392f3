"""``workers: N``: N gateway processes on one port, started and kept running by this one.

The supervisor serves nothing itself. It checks that no other program holds the port, then
starts ``authproxy serve --worker I`` N times (the same config, the same environment); each
worker binds the port with ``SO_REUSEPORT`` (``listen.py``) and the kernel spreads new
connections over them. Worker 1 starts first, alone, so a problem every worker would meet (the
database unreachable, a bad secret) is said once, by it; the others start together after it.
A worker tells it is listening by writing a byte to a pipe; then the supervisor prints one
"listening on" line for all.

SIGTERM or SIGINT: passed on to every worker, each drains its open streams and writes its
usage (``shutdown_grace``), and the supervisor exits 0 once all did. A worker that dies is
started again after a pause that doubles while it keeps dying young (0.5 s up to 30 s), and
meanwhile the others take every new connection. Workers get SIGTERM if the supervisor dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["BACKOFF", "READY_TIMEOUT", "Supervisor", "worker_argv"]

log = logging.getLogger(__name__)

READY_TIMEOUT = 300.0  # seconds a worker may take to listen (store, migrations, health round)
BACKOFF = (0.5, 30.0)  # first and longest pause before starting a dead worker again
STABLE_AFTER = 10.0  # a worker that ran this long died of something new: first pause again
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def _ready(fd: int, proc: asyncio.subprocess.Process) -> bool:
    """True once the worker wrote its byte; False if it exited (or said nothing) first."""
    loop = asyncio.get_running_loop()
    said: asyncio.Future[bool] = loop.create_future()

    def readable() -> None:
        data = os.read(fd, 1)
        if not said.done():
            said.set_result(bool(data))

    loop.add_reader(fd, readable)
    exited = asyncio.create_task(proc.wait())
    either: set[asyncio.Future[Any]] = {said, exited}
    try:
        done, _ = await asyncio.wait(
            either, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        return said in done and said.result()
    finally:
        loop.remove_reader(fd)
        os.close(fd)
        exited.cancel()
        said.cancel()


class Supervisor:
    def __init__(self, *, count: int, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self._count = count
        self._argv = list(argv)  # `authproxy [--config PATH] serve`
        self._env = dict(env)
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._stop = asyncio.Event()

    async def _spawn(self, index: int) -> asyncio.subprocess.Process | None:
        """Start worker ``index``; the process once it listens, None if it did not."""
        read, write = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._argv,
                "--worker",
                str(index),
                "--ready-fd",
                str(write),
                env=self._env,
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(write,),
                preexec_fn=_die_with_parent,
            )
        finally:
            os.close(write)
        self._procs[index] = proc
        if await _ready(read, proc):
            return proc
        if proc.returncode is None:  # alive but silent: it will not serve
            proc.kill()
            await proc.wait()
        return None

    async def run(self, *, on_ready: Callable[[], None]) -> int:
        """Until SIGTERM / SIGINT; 1 if the workers could not be started. ``on_ready`` once
        every worker listens."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        starting = asyncio.create_task(self._start_all())
        stopped = asyncio.create_task(self._stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done() or not starting.result():
            starting.cancel()
            stopped.cancel()
            await self._stop_all()
            return 0 if self._stop.is_set() else 1
        on_ready()
        keepers = [asyncio.create_task(self._keep(i)) for i in self._procs]
        await stopped
        for task in keepers:
            task.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        return await self._stop_all()

    async def _start_all(self) -> bool:
        if await self._spawn(1) is None:
            return False
        rest = await asyncio.gather(*(self._spawn(i) for i in range(2, self._count + 1)))
        return all(p is not None for p in rest)

    async def _keep(self, index: int) -> None:
        """Start worker ``index`` again whenever it dies, with a growing pause."""
        pause = BACKOFF[0]
        while True:
            proc = self._procs[index]
            started = time.monotonic()
            status = await proc.wait()
            if time.monotonic() - started >= STABLE_AFTER:
                pause = BACKOFF[0]
            log.warning(
                "worker %d (pid %d) exited with status %d; starting it again in %gs",
                index,
                proc.pid,
                status,
                pause,
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, BACKOFF[1])
            if await self._spawn(index) is not None:
                log.warning("worker %d is back (pid %d)", index, self._procs[index].pid)

    async def _stop_all(self) -> int:
        """SIGTERM to every worker; 0 if each drained and exited cleanly."""
        running = [p for p in self._procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        codes = [await p.wait() for p in running]
        return 0 if all(c == 0 for c in codes) else 1


def worker_argv(config_path: str | None) -> list[str]:
    """``authproxy [--config PATH] serve`` as this Python runs it."""
    config = ["--config", config_path] if config_path else []
    return [sys.executable, "-m", "authproxy", *config, "serve"]
