"""Reading what the screens show, for the pilot tests."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.widgets import Static

from admin_tui.widgets.table import RecordTable


def table_rows(app: App[Any], table_id: str | None = None) -> list[list[str]]:
    """The cells of a table on the current screen, as plain text."""
    screen = app.screen
    table = (
        screen.query_one(f"#{table_id}", RecordTable) if table_id else screen.query_one(RecordTable)
    )
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def column(app: App[Any], index: int, table_id: str | None = None) -> list[str]:
    return [row[index] for row in table_rows(app, table_id)]


def text_of(app: App[Any], selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def notifications(app: App[Any]) -> list[str]:
    return [n.message for n in app._notifications]


def table(app: App[Any], table_id: str | None = None) -> RecordTable:
    screen = app.screen
    return (
        screen.query_one(f"#{table_id}", RecordTable) if table_id else screen.query_one(RecordTable)
    )


def select_row(app: App[Any], first_cell: str, table_id: str | None = None) -> None:
    """Put the cursor on the row whose first cell is ``first_cell``."""
    table(app, table_id).move_cursor(row=column(app, 0, table_id).index(first_cell))
