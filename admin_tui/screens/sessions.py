"""Browser sessions: who is signed in, since when, from where; end a user's sessions."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static

from admin_tui import formatting as fmt
from admin_tui.context import Context
from admin_tui.modals.confirm import Confirm
from admin_tui.screens.listing import SearchableScreen
from admin_tui.widgets.table import Cell, RecordTable
from authproxy.store.records import Session

__all__ = ["COLUMNS", "SessionsScreen"]

COLUMNS = [
    ("User", 12),
    ("Via", 8),
    ("Created", 11),
    ("Last seen", 9),
    ("Expires", 8),
    ("From", 15),
]


def _text(s: Session) -> str:
    return f"{s.user_name} {s.via} {s.source or ''} {s.user_agent or ''}".lower()


class SessionsScreen(SearchableScreen):
    MODE = "sessions"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search"),
        Binding("x", "end", "End user's sessions"),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.sessions: list[Session] = []

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="/ search by user, sign-in or address", id="search", compact=True)
        yield RecordTable(COLUMNS, id="sessions-table")
        yield Static("", id="session-detail", classes="detail")

    def selected(self) -> Session | None:
        key = self.table.selected_key
        return next((s for s in self.sessions if str(s.id) == key), None)

    # -- loading ------------------------------------------------------------------------------

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self) -> None:
        self.sessions = await self.service.list_sessions()  # the idle ones are purged first
        self._show()

    def _show(self) -> None:
        now, zone, needle = self.context.clock(), self.context.zone, self.needle
        rows = []
        for s in self.sessions:
            if needle and needle not in _text(s):
                continue
            cells: list[Cell] = [
                s.user_name,
                s.via,
                fmt.short_time(s.created_at, zone),
                fmt.ago(s.last_seen_at, now),
                fmt.until(s.expires_at, now),
                s.source or "-",
            ]
            rows.append((str(s.id), cells))
        self.table.replace_rows(rows)
        self._detail()

    def _detail(self) -> None:
        s = self.selected()
        if s is None:
            text = f"{len(self.sessions)} live session(s). No session selected."
        else:
            zone = self.context.zone
            disabled = " (user disabled)" if s.user_disabled else ""
            text = (
                f"{s.user_name}{disabled} ({s.role}) signed in with {s.via}"
                f" {fmt.timestamp(s.created_at, zone)} from {s.source or '?'}\n"
                f"ends {fmt.timestamp(s.expires_at, zone)} · {s.user_agent or '(no user agent)'}"
            )
        self.query_one("#session-detail", Static).update(text)

    # -- actions ------------------------------------------------------------------------------

    @work(group="action", exit_on_error=False)
    async def action_end(self) -> None:
        s = self.selected()
        if s is None:
            self.notify("Select a session first.", severity="warning")
            return
        count = sum(1 for other in self.sessions if other.user_id == s.user_id)
        question = (
            f"End all {count} browser session(s) of {s.user_name}?\n"
            "Their browsers are signed out at once; their API keys keep working."
        )
        if not await self.app.push_screen_wait(Confirm(question, yes="End sessions")):
            return
        ended = await self.service.end_sessions(s.user_name)
        self.notify(f"Ended {ended} session(s) of {s.user_name}.")
        self.reload()
