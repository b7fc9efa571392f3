"""Where every front end starts: the server secret and the store, opened once, and the admin
service made for whoever acts.

The gateway (``app.py``), the CLI and the admin TUI open them with ``open_services``; the
``AdminService`` is made in one place, ``Services.admin``: for the CLI and the TUI through
``open_admin``, in the gateway for the account page and for OIDC sign-ins.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from authproxy.admin.service import AdminError, AdminService
from authproxy.auth.secret import ServerSecret
from authproxy.config.schema import Config
from authproxy.store.base import Store
from authproxy.store.dispatch import open_store

__all__ = ["Services", "local_actor", "open_admin", "open_services"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """The shared services of one process: its configuration, the secret, the store."""

    config: Config
    secret: ServerSecret
    store: Store

    def admin(self, *, actor: str, source: str) -> AdminService:
        """The admin service acting as ``actor`` from ``source`` (both go into the audit log)."""
        return AdminService(
            store=self.store,
            hasher=self.secret.hasher,
            config=self.config,
            actor=actor,
            source=source,
        )


@asynccontextmanager
async def open_services(config: Config, *, create: bool = True) -> AsyncIterator[Services]:
    """The secret (made on first use when ``create``) and the store, checked against it."""
    secret = ServerSecret.load(config.secret_path, create=create)
    store = await open_store(config.store_location, secret=secret.value)
    try:
        yield Services(config=config, secret=secret, store=store)
    finally:
        await store.close()


def local_actor(front_end: str) -> str:
    """``cli:alice``: the front end, and the local account of whoever runs it."""
    try:
        who = getpass.getuser()
    except Exception:
        who = str(os.getuid())
    return f"{front_end}:{who}"


@asynccontextmanager
async def open_admin(
    config: Config, *, actor: str, create: bool = False
) -> AsyncIterator[AdminService]:
    """The admin service of the CLI and the TUI, acting from this machine (``local``). Unless
    ``create`` (``authproxy init``), a missing SQLite database is an AdminError, not a new one."""
    if not create and config.database is None and not config.db_path.exists():
        raise AdminError(f"no database at {config.db_path}; run `authproxy init` first")
    async with open_services(config, create=create) as services:
        yield services.admin(actor=actor, source="local")
