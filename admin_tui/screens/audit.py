"""The audit log: every admin action and failed login, newest first, filterable."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input, Static

from admin_tui import formatting as fmt
from admin_tui.context import Context
from admin_tui.screens.listing import SearchableScreen
from admin_tui.widgets.table import Cell, RecordTable
from authproxy.store.records import AuditEntry

__all__ = ["COLUMNS", "LIMIT", "PERIODS", "AuditScreen"]

COLUMNS = [
    ("Time", 11),
    ("Actor", 9),
    ("Action", 13),
    ("Target", 8),
    ("Detail", 11),
    ("From", 15),
]
PERIODS = (("1h", 3600.0), ("24h", 86400.0), ("7d", 7 * 86400.0), ("30d", 30 * 86400.0))
LIMIT = 1000


def _text(e: AuditEntry) -> str:
    return " ".join(x or "" for x in (e.actor, e.action, e.target, e.detail, e.source)).lower()


class AuditScreen(SearchableScreen):
    MODE = "audit"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Filter"),
        Binding("p", "period", "Period"),
        Binding("escape", "clear_search", "Clear filter", show=False),
    ]

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.entries: list[AuditEntry] = []
        self.period = 2  # index into PERIODS: 7d, like `authproxy audit`

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="audit-bar"):
            yield Input(placeholder="/ filter: actor, action, target…", id="search", compact=True)
            yield Static("", id="period")
        yield RecordTable(COLUMNS, id="audit-table")
        yield Static("", id="audit-detail", classes="detail")

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self) -> None:
        name, seconds = PERIODS[self.period]
        self.query_one("#period", Static).update(f"last {name} (p)")
        since = self.context.clock() - seconds
        self.entries = await self.service.audit_log(since=since, limit=LIMIT)
        self._show()

    def _show(self) -> None:
        zone = self.context.zone
        needle = self.needle
        rows = []
        for index, e in enumerate(self.entries):
            if needle and needle not in _text(e):
                continue
            cells: list[Cell] = [
                fmt.short_time(e.ts, zone),
                e.actor,
                e.action,
                e.target or "-",
                e.detail or "-",
                e.source or "-",
            ]
            rows.append((str(index), cells))
        self.table.replace_rows(rows)
        self._detail()

    def _detail(self) -> None:
        key = self.table.selected_key
        text = f"{self.table.row_count} of {len(self.entries)} shown"
        if len(self.entries) == LIMIT:
            text += f" (the newest {LIMIT}: shorten the period for older ones)"
        if key is not None:
            e = self.entries[int(key)]
            target = f" {e.target}" if e.target else ""
            when = fmt.timestamp(e.ts, self.context.zone)
            text += f" · {when} {e.actor}: {e.action}{target} from {e.source or '?'}"
            text += f"\n{e.detail or '(no detail)'}"
        self.query_one("#audit-detail", Static).update(text)

    def action_period(self) -> None:
        self.period = (self.period + 1) % len(PERIODS)
        self.reload()
