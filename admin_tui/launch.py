"""Open the store the gateway uses and run the admin app on it (``authproxy admin``)."""

from __future__ import annotations

import logging

from admin_tui.app import create_app
from authproxy.admin.entry import local_actor, open_admin
from authproxy.config.schema import Config

__all__ = ["run_admin"]


async def run_admin(config: Config, *, start: str = "dashboard") -> None:
    """Raises AdminError (no database yet) or StoreError before the screen is taken over."""
    # Log lines written to the terminal would tear the screen; the app reports errors itself.
    logging.getLogger("authproxy").setLevel(logging.CRITICAL)
    async with open_admin(config, actor=local_actor("tui")) as service:
        await create_app(service, start=start).run_async()
