"""What the list screens share: one record table with a detail line under it, and (for the
searchable ones) a search box that filters the rows as it is typed into.

A subclass yields the widgets in ``compose_body`` (the search box with ``id="search"``),
fills the table in ``_show`` and describes the highlighted row in ``_detail``; the keys that
lead here (``/``, Escape) stay in each screen's own ``BINDINGS``, with its own words.
"""

from __future__ import annotations

from textual.widgets import DataTable, Input

from admin_tui.screens.base import AdminScreen
from admin_tui.widgets.table import RecordTable

__all__ = ["SearchableScreen", "TableScreen"]


class TableScreen(AdminScreen):
    """A screen around one ``RecordTable``: the detail line follows the cursor."""

    @property
    def table(self) -> RecordTable:
        return self.query_one(RecordTable)

    def _detail(self) -> None:
        """Describe the highlighted row."""
        raise NotImplementedError

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()


class SearchableScreen(TableScreen):
    """A ``TableScreen`` whose rows are filtered by the ``#search`` box."""

    @property
    def search(self) -> Input:
        return self.query_one("#search", Input)

    @property
    def needle(self) -> str:
        """What to look for, lower-cased ("" shows every row)."""
        return self.search.value.strip().lower()

    def _show(self) -> None:
        """Fill the table from the loaded records that match ``needle``."""
        raise NotImplementedError

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_search(self) -> None:
        self.search.focus()

    def action_clear_search(self) -> None:
        self.search.value = ""
        self.table.focus()
