"""Running the gateway: the port bound first, uvloop where available, logs with credentials
masked, graceful drain on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from authproxy import appkeys as K
from authproxy.app import build_app
from authproxy.config.schema import Config
from authproxy.web.event_loop import new_event_loop
from authproxy.web.listen import bind_sockets
from authproxy.web.log_redact import install_redaction
from authproxy.web.protocol import JsonErrorRunner

__all__ = ["LOG_FORMAT", "run", "serve", "setup_logging"]

log = logging.getLogger("authproxy")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr)
    install_redaction(logging.getLogger().handlers, LOG_FORMAT)
    # The access log line is JSON already; print it bare.
    access = logging.getLogger("authproxy.access")
    handler = logging.StreamHandler(sys.stderr)
    install_redaction([handler], "%(message)s")
    access.addHandler(handler)
    access.propagate = False


async def run(config: Config, *, ready_message: bool = True) -> None:
    """Serve until SIGTERM / SIGINT; ``ListenError`` (and nothing started) if the address
    can't be listened on."""
    sockets = bind_sockets(config.listen.host, config.listen.port)
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
    if ready_message:
        _announce(app, runner)
    await stop.wait()
    log.info("shutting down: draining open requests (up to %gs)", config.shutdown_grace)
    await runner.cleanup()
    log.info("stopped")


def _announce(app: web.Application, runner: web.AppRunner) -> None:
    addresses = ", ".join(f"http://{a[0]}:{a[1]}" for a in runner.addresses if len(a) >= 2)
    catalog = app[K.CATALOG]
    models = ", ".join(catalog.enabled_models()) or "none yet"
    log.info("authproxy listening on %s (models: %s)", addresses, models)
    if len(app[K.KEY_INDEX]) == 0:
        log.info(
            "no API keys yet: run `authproxy init` to create the first admin and print its key"
        )


def serve(config: Config) -> None:
    setup_logging(config.log_level)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(run(config))
