"""API keys: all of them or one user's, create (shown once), revoke with confirmation."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static

from admin_tui import formatting as fmt
from admin_tui.context import Context
from admin_tui.modals.confirm import Confirm
from admin_tui.modals.key_create import CreateKeyModal
from admin_tui.modals.key_shown import KeyShownModal
from admin_tui.screens.listing import SearchableScreen
from admin_tui.widgets.table import Cell, RecordTable
from authproxy.admin.service import AdminService
from authproxy.store.records import ApiKey

__all__ = ["COLUMNS", "KeysScreen", "create_key", "status"]

COLUMNS = [
    ("ID", 3),
    ("User", 12),
    ("Key", 10),
    ("Label", 13),
    ("Expires", 8),
    ("Last used", 9),
    ("Status", 7),
]


def status(k: ApiKey, now: float) -> Text:
    if k.revoked_at is not None:
        return Text("revoked", style="red")
    if k.expires_at is not None and k.expires_at <= now:
        return Text("expired", style="yellow")
    if k.acts_for_users:  # active, and may name the person each request is for
        return Text("service", style="cyan")
    return Text("active", style="green")


async def create_key(app: App[object], service: AdminService, user: str | None) -> ApiKey | None:
    """Run from a worker. Returns the new key's record, or None if the admin cancelled."""
    users = [u.name for u in await service.list_users() if not u.disabled]
    if not users:
        app.notify("There is no active user to create a key for.", severity="warning")
        return None
    request = await app.push_screen_wait(CreateKeyModal(users, user))
    if request is None:
        return None
    new = await service.create_key(
        request.user,
        label=request.label,
        expires_in=request.expires_in,
        acts_for_users=request.acts_for_users,
    )
    await app.push_screen_wait(KeyShownModal(new.record.user_name, new.secret))
    return new.record


class KeysScreen(SearchableScreen):
    MODE = "keys"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search"),
        Binding("n", "create", "New key"),
        Binding("x", "revoke", "Revoke"),
        Binding("escape", "all_users", "All users", show=False),
    ]

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.keys: list[ApiKey] = []
        self.user: str | None = None  # show only this user's keys

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="/ search by user, label or key prefix", id="search", compact=True)
        yield RecordTable(COLUMNS, id="keys-table")
        yield Static("", id="key-detail", classes="detail")

    def selected(self) -> ApiKey | None:
        key = self.table.selected_key
        return next((k for k in self.keys if str(k.id) == key), None)

    def show_user(self, user: str | None) -> None:
        """Show one user's keys (None: everyone's)."""
        self.user = user
        self.reload()

    # -- loading ------------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        self._load(select)

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self, select: str | None = None) -> None:
        self.keys = await self.service.list_keys(self.user)
        self._show(select)

    def _show(self, select: str | None = None) -> None:
        now = self.context.clock()
        needle = self.needle
        rows = []
        for k in self.keys:
            kind = "service" if k.acts_for_users else ""
            if needle and needle not in f"{k.user_name} {k.label or ''} {k.prefix} {kind}".lower():
                continue
            cells: list[Cell] = [
                str(k.id),
                k.user_name,
                f"{k.prefix}…",
                k.label or "-",
                fmt.until(k.expires_at, now),
                fmt.ago(k.last_used_at, now),
                status(k, now),
            ]
            rows.append((str(k.id), cells))
        self.table.replace_rows(rows, select=select)
        self._detail()

    def _detail(self) -> None:
        scope = f"Keys of {self.user} (Escape: all users)" if self.user else "All keys"
        k = self.selected()
        if k is None:
            text = f"{scope}. No key selected."
        else:
            zone = self.context.zone
            text = f"{scope}. Key {k.id} created {fmt.timestamp(k.created_at, zone)}"
            if k.expires_at is not None:
                text += f", expires {fmt.timestamp(k.expires_at, zone)}"
            if k.revoked_at is not None:
                text += f", revoked {fmt.timestamp(k.revoked_at, zone)}"
            if k.acts_for_users:
                text += "; a service key: acts for the users it names"
        self.query_one("#key-detail", Static).update(text)

    def action_all_users(self) -> None:
        self.action_clear_search()
        if self.user is not None:
            self.show_user(None)

    # -- actions ------------------------------------------------------------------------------

    @work(group="action", exit_on_error=False)
    async def action_create(self) -> None:
        record = await create_key(self.app, self.service, self.user)
        if record is not None:
            self.notify(f"Key {record.prefix}… created for {record.user_name}.")
            self.reload(select=str(record.id))

    @work(group="action", exit_on_error=False)
    async def action_revoke(self) -> None:
        k = self.selected()
        if k is None:
            self.notify("Select a key first.", severity="warning")
            return
        if k.revoked_at is not None:
            self.notify(f"Key {k.id} is already revoked.", severity="warning")
            return
        question = (
            f"Revoke key {k.id} ({k.prefix}…) of {k.user_name}?\n"
            "Every client using it is refused within a second. This cannot be undone."
        )
        if not await self.app.push_screen_wait(Confirm(question, yes="Revoke")):
            return
        record = await self.service.revoke_key(k.id)
        self.notify(f"Revoked key {record.id} of {record.user_name}.")
        self.reload()
