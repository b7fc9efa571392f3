"""Open the store the gateway uses and run the admin app on it (``authproxy admin``)."""

from __future__ import annotations

import getpass
import logging
import os

from admin_tui.app import create_app
from authproxy.cli.commands import admin_service
from authproxy.config.schema import Config


def _actor() -> str:
    try:
        who = getpass.getuser()
    except Exception:
        who = str(os.getuid())
    return f"tui:{who}"


async def run_admin(config: Config, *, start: str = "dashboard") -> None:
    """Raises AdminError (no database yet) or StoreError before the screen is taken over."""
    # Log lines written to the terminal would tear the screen; the app reports errors itself.
    logging.getLogger("authproxy").setLevel(logging.CRITICAL)
    async with admin_service(config) as service:
        service.actor = _actor()
        await create_app(service, start=start).run_async()
