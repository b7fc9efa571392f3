"""Creating a key, from the users screen or the keys screen: ask, create, show it once."""

from __future__ import annotations

from textual.app import App

from admin_tui.modals.key_create import CreateKeyModal
from admin_tui.modals.key_shown import KeyShownModal
from authproxy.admin import AdminService
from authproxy.store.records import ApiKey


async def create_key(app: App[object], service: AdminService, user: str | None) -> ApiKey | None:
    """Run from a worker. Returns the new key's record, or None if the admin cancelled."""
    users = [u.name for u in await service.list_users() if not u.disabled]
    if not users:
        app.notify("There is no active user to create a key for.", severity="warning")
        return None
    request = await app.push_screen_wait(CreateKeyModal(users, user))
    if request is None:
        return None
    new = await service.create_key(request.user, label=request.label, expires_in=request.expires_in)
    await app.push_screen_wait(KeyShownModal(new.record.user_name, new.secret))
    return new.record
