"""The admin app: six screens (as modes), the nav keys, the command palette.

``create_app`` takes the data layer: an ``AdminService`` (the same one the CLI uses) and a
clock, so tests run it on a seeded store at a fixed time.
"""

from __future__ import annotations

import time
from functools import partial
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from admin_tui.context import Clock, Context
from admin_tui.palette import AdminCommands
from admin_tui.screens.audit import AuditScreen
from admin_tui.screens.base import AdminScreen
from admin_tui.screens.dashboard import DashboardScreen
from admin_tui.screens.keys import KeysScreen
from admin_tui.screens.models import ModelsScreen
from admin_tui.screens.sessions import SessionsScreen
from admin_tui.screens.users import UsersScreen
from admin_tui.widgets.nav import ALL_SCREENS
from authproxy.admin.service import AdminService

__all__ = ["SCREEN_TYPES", "AdminApp", "create_app"]

SCREEN_TYPES: dict[str, type[AdminScreen]] = {
    s.MODE: s
    for s in (
        DashboardScreen,
        UsersScreen,
        KeysScreen,
        ModelsScreen,
        AuditScreen,
        SessionsScreen,
    )
}


class AdminApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "authproxy admin"
    COMMANDS = App.COMMANDS | {AdminCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(key, f"goto('{mode}')", title, show=False) for mode, key, title in ALL_SCREENS),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, context: Context, *, start: str = "dashboard") -> None:
        super().__init__()
        self.context = context
        self.start = start
        for mode, screen_type in SCREEN_TYPES.items():
            self.add_mode(mode, partial(screen_type, context))

    @property
    def service(self) -> AdminService:
        return self.context.service

    async def on_mount(self) -> None:
        await self.switch_mode(self.start)

    async def goto(self, mode: str) -> None:
        if mode != self.current_mode:
            await self.switch_mode(mode)

    async def action_goto(self, mode: str) -> None:
        await self.goto(mode)

    async def run_on(self, mode: str, action: str) -> None:
        """Show ``mode``'s screen and run one of its actions (from the palette)."""
        await self.goto(mode)
        await self.screen.run_action(action)

    async def refresh_screen(self) -> None:
        screen = self.screen
        if isinstance(screen, AdminScreen):
            screen.reload()


def create_app(
    service: AdminService,
    *,
    clock: Clock = time.time,
    refresh_interval: float = 5.0,
    start: str = "dashboard",
) -> AdminApp:
    if start not in SCREEN_TYPES:
        raise ValueError(f"no screen {start!r} (screens: {', '.join(SCREEN_TYPES)})")
    context = Context(service=service, clock=clock, refresh_interval=refresh_interval)
    return AdminApp(context, start=start)
