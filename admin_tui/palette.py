"""Command palette (ctrl+p): every screen and the main actions, found by typing a few letters."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from admin_tui.widgets.nav import ALL_SCREENS

if TYPE_CHECKING:
    from admin_tui.app import AdminApp

__all__ = ["AdminCommands", "Callback"]

Callback = Callable[[], Coroutine[Any, Any, None]]


class AdminCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callback]]:
        app = cast("AdminApp", self.app)
        commands: list[tuple[str, str, Callback]] = [
            (f"Go to {title}", f"show the {title.lower()} screen ({key})", partial(app.goto, mode))
            for mode, key, title in ALL_SCREENS
        ]
        commands += [
            ("Add user", "create a user and pick their role", partial(app.run_on, "users", "add")),
            (
                "Create key",
                "create an API key (shown once)",
                partial(app.run_on, "keys", "create"),
            ),
            ("Set quota", "limits of the selected user", partial(app.run_on, "users", "quota")),
            ("Revoke key", "revoke the selected key", partial(app.run_on, "keys", "revoke")),
            (
                "End sessions",
                "sign the selected session's user out of every browser",
                partial(app.run_on, "sessions", "end"),
            ),
            ("Refresh", "fetch this screen's data again (ctrl+r)", app.refresh_screen),
        ]
        return commands

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
