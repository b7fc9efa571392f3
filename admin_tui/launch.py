"""Open the store the gateway uses and run the admin app on it (``authproxy admin``)."""

from __future__ import annotations

import logging

from admin_tui.app import create_app
from authproxy.admin.entry import local_actor, open_admin
from authproxy.admin.service import AdminError
from authproxy.config.schema import Config

__all__ = ["run_admin"]


async def run_admin(config: Config, *, start: str = "dashboard", headless: bool = False) -> None:
    """Raises AdminError (no database yet) or StoreError before the screen is taken over, and
    AdminError after it when the app ended on an error (Textual has shown it by then), so the
    command exits non-zero."""
    # Log lines written to the terminal would tear the screen; the app reports errors itself.
    logging.getLogger("authproxy").setLevel(logging.CRITICAL)
    async with open_admin(config, actor=local_actor("tui")) as service:
        app = create_app(service, start=start)
        await app.run_async(headless=headless)
    if app.return_code:
        raise AdminError("the admin UI stopped on an error (shown above)")
