"""Users: search, add, role, disable / enable, quotas, and usage against quota."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Static

from admin_tui import formatting as fmt
from admin_tui.context import Context
from admin_tui.modals.confirm import Confirm
from admin_tui.modals.quota import LABELS, QuotaModal
from admin_tui.modals.role import RoleModal
from admin_tui.modals.user_add import AddUserModal
from admin_tui.screens.keys import KeysScreen, create_key
from admin_tui.screens.listing import SearchableScreen
from admin_tui.widgets.table import Cell, RecordTable
from authproxy.admin.service import QUOTA_FIELDS, UserUsage
from authproxy.limits.quota import resolve_limits

__all__ = ["COLUMNS", "DAY", "UsersScreen"]

COLUMNS = [
    ("User", 12),
    ("Role", 10),
    ("Status", 8),
    ("Tokens today", 14),
    ("This month", 12),
    ("RPM", 4),
    ("Conc", 4),
]
DAY = 86400.0


def _cells(r: UserUsage) -> list[Cell]:
    status = Text("disabled", style="bold red") if r.user.disabled else Text("active")
    return [
        r.user.name,
        r.user.role,
        status,
        fmt.against(r.tokens_today, r.limits.tokens_per_day),
        fmt.against(r.tokens_month, r.limits.tokens_per_month),
        fmt.limit(r.limits.requests_per_minute),
        fmt.limit(r.limits.max_concurrent),
    ]


def _matches(r: UserUsage, needle: str) -> bool:
    hay = f"{r.user.name} {r.user.role} {r.user.email or ''}".lower()
    return needle in hay


class UsersScreen(SearchableScreen):
    MODE = "users"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search"),
        Binding("n", "add", "Add"),
        Binding("r", "role", "Role"),
        Binding("x", "toggle_disabled", "Dis/enable"),
        Binding("q", "quota", "Quota"),
        Binding("c", "create_key", "New key"),
        Binding("enter", "show_keys", "Keys"),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.report: list[UserUsage] = []

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="/ search by name, role or email", id="search", compact=True)
        yield RecordTable(COLUMNS, id="users-table")
        yield Static("", id="user-detail", classes="detail")

    def selected(self) -> UserUsage | None:
        key = self.table.selected_key
        return next((r for r in self.report if r.user.name == key), None)

    # -- loading ------------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        self._load(select)

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self, select: str | None = None) -> None:
        now = self.context.clock()
        self.report = await self.service.usage_against_quotas(since=now - DAY, at=now)
        self._show(select)

    def _show(self, select: str | None = None) -> None:
        rows = [(r.user.name, _cells(r)) for r in self.report if _matches(r, self.needle)]
        self.table.replace_rows(rows, select=select)
        self._detail()

    def _detail(self) -> None:
        r = self.selected()
        text = "No user selected." if r is None else self._describe(r)
        self.query_one("#user-detail", Static).update(text)

    def _describe(self, r: UserUsage) -> str:
        own = r.override
        overridden = [LABELS[f] for f in QUOTA_FIELDS if own and getattr(own, f) is not None]
        email = f" <{r.user.email}>" if r.user.email else ""
        last_day = (
            f"last 24h: {r.requests} requests, {fmt.compact(r.prompt_tokens)} in +"
            f" {fmt.compact(r.completion_tokens)} out tokens"
        )
        limits = f"Own limits: {', '.join(overridden)}" if overridden else "The role's limits"
        return f"{r.user.name}{email} · {last_day}\n{limits} · Enter: keys"

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        await self.action_show_keys()

    # -- actions ------------------------------------------------------------------------------

    def _need_user(self) -> UserUsage | None:
        r = self.selected()
        if r is None:
            self.notify("Select a user first.", severity="warning")
        return r

    @work(group="action", exit_on_error=False)
    async def action_add(self) -> None:
        config = self.service.config
        new = await self.app.push_screen_wait(AddUserModal(list(config.roles), config.default_role))
        if new is None:
            return
        user = await self.service.add_user(new.name, role=new.role, email=new.email)
        self.notify(f"Added {user.name} (role {user.role}). Press c to give them a key.")
        self.reload(select=user.name)

    @work(group="action", exit_on_error=False)
    async def action_role(self) -> None:
        r = self._need_user()
        if r is None:
            return
        roles = list(self.service.config.roles)
        role = await self.app.push_screen_wait(RoleModal(r.user.name, roles, r.user.role))
        if role is None or role == r.user.role:
            return
        user = await self.service.set_role(r.user.name, role)
        self.notify(f"{user.name} now has role {user.role}.")
        self.reload()

    @work(group="action", exit_on_error=False)
    async def action_toggle_disabled(self) -> None:
        r = self._need_user()
        if r is None:
            return
        name = r.user.name
        if not r.user.disabled:
            question = f"Disable {name}? Their keys stop working within a second."
            if not await self.app.push_screen_wait(Confirm(question, yes="Disable")):
                return
        user = await self.service.set_disabled(name, not r.user.disabled)
        self.notify(f"{'Disabled' if user.disabled else 'Enabled'} {user.name}.")
        self.reload()

    @work(group="action", exit_on_error=False)
    async def action_quota(self) -> None:
        r = self._need_user()
        if r is None:
            return
        defaults = resolve_limits(self.service.config.roles.get(r.user.role), None)
        modal = QuotaModal(r.user.name, r.user.role, r.override, defaults)
        changes = await self.app.push_screen_wait(modal)
        if changes is None:
            return
        if not changes:
            self.notify("No limit changed.")
            return
        limits = await self.service.set_quota(r.user.name, **changes)
        self.notify(
            f"{r.user.name}: {fmt.limit(limits.tokens_per_day)} tokens/day,"
            f" {fmt.limit(limits.tokens_per_month)}/month,"
            f" {fmt.limit(limits.requests_per_minute)} rpm,"
            f" {fmt.limit(limits.max_concurrent)} concurrent",
            title="Limits set",
        )
        self.reload()

    @work(group="action", exit_on_error=False)
    async def action_create_key(self) -> None:
        r = self.selected()
        record = await create_key(self.app, self.service, r.user.name if r else None)
        if record is not None:
            self.notify(f"Key {record.prefix}… created for {record.user_name}.")

    async def action_show_keys(self) -> None:
        r = self._need_user()
        if r is None:
            return
        await self.app.switch_mode("keys")
        screen = self.app.screen
        if isinstance(screen, KeysScreen):
            screen.show_user(r.user.name)
