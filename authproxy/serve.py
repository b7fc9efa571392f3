"""Running the gateway: the port bound first, uvloop where available, logs with credentials
masked, graceful drain on SIGTERM / SIGINT; with ``workers: N``, a supervisor and N worker
processes on one port (``web/supervisor.py``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from aiohttp import web

from authproxy import appkeys as K
from authproxy.app import build_app
from authproxy.config.schema import Config
from authproxy.web.event_loop import new_event_loop
from authproxy.web.heap import settle_heap
from authproxy.web.listen import ListenError, bind_sockets, can_share_port
from authproxy.web.log_redact import install_redaction
from authproxy.web.protocol import JsonErrorRunner
from authproxy.web.supervisor import Supervisor, worker_argv

__all__ = ["LOG_FORMAT", "run", "serve", "setup_logging", "supervise"]

log = logging.getLogger("authproxy")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, *, worker: int | None = None) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr)
    where = "" if worker is None else f"[worker {worker}] "
    install_redaction(
        logging.getLogger().handlers, LOG_FORMAT.replace("%(name)s", where + "%(name)s")
    )
    # The access log line is JSON already; print it bare.
    access = logging.getLogger("authproxy.access")
    handler = logging.StreamHandler(sys.stderr)
    install_redaction([handler], "%(message)s")
    access.addHandler(handler)
    access.propagate = False


async def run(
    config: Config,
    *,
    ready_message: bool = True,
    worker: int | None = None,
    ready_fd: int | None = None,
) -> None:
    """Serve until SIGTERM / SIGINT; ``ListenError`` (and nothing started) if the address
    can't be listened on. A ``worker`` shares the port with its siblings and tells its
    supervisor it listens by writing to ``ready_fd``."""
    sockets = bind_sockets(config.listen.host, config.listen.port, reuse_port=worker is not None)
    try:
        app = build_app(config)
        runner = JsonErrorRunner(
            app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=config.shutdown_grace,
        )
        await runner.setup()
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    for sock in sockets:
        await web.SockSite(runner, sock, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    if ready_message:
        _announce(app, runner, worker)
    await stop.wait()
    log.info("shutting down: draining open requests (up to %gs)", config.shutdown_grace)
    await runner.cleanup()
    log.info("stopped")


def _announce(app: web.Application, runner: web.AppRunner, worker: int | None) -> None:
    if worker is None:
        addresses = ", ".join(f"http://{a[0]}:{a[1]}" for a in runner.addresses if len(a) >= 2)
        catalog = app[K.CATALOG]
        models = ", ".join(catalog.enabled_models()) or "none yet"
        log.info("authproxy listening on %s (models: %s)", addresses, models)
    else:
        log.info("ready (pid %d)", os.getpid())
    if len(app[K.KEY_INDEX]) == 0 and worker in (None, 1):
        log.info(
            "no API keys yet: run `authproxy init` to create the first admin and print its key"
        )


async def supervise(config: Config, config_path: str | None) -> int:
    """``workers: N``: check the port is free, start the workers, keep them running."""
    if not can_share_port():
        raise ListenError(f"workers: {config.workers} needs Linux (SO_REUSEPORT); set workers: 1")
    probe = bind_sockets(config.listen.host, config.listen.port)  # held by nobody else
    port = probe[0].getsockname()[1]
    for sock in probe:
        sock.close()
    env = {**os.environ, "AUTHPROXY_LISTEN__PORT": str(port)}
    supervisor = Supervisor(count=config.workers, argv=worker_argv(config_path), env=env)
    return await supervisor.run(on_ready=lambda: _listening(config, port))


def _listening(config: Config, port: int) -> None:
    host = config.listen.host
    where = f"[{host}]" if ":" in host else host
    log.info("authproxy listening on http://%s:%d (%d workers)", where, port, config.workers)


def serve(
    config: Config,
    *,
    config_path: str | None = None,
    worker: int | None = None,
    ready_fd: int | None = None,
) -> int:
    setup_logging(config.log_level, worker=worker)
    if config.workers > 1 and worker is None:
        return asyncio.run(supervise(config, config_path))
    settle_heap()  # everything is imported and configured: keep the collector off it
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(run(config, worker=worker, ready_fd=ready_fd))
    return 0
