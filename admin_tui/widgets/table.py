"""A row-cursor table that keeps the cursor on the same record across reloads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.widgets import DataTable

__all__ = ["Cell", "RecordTable"]

Cell = str | Text


class RecordTable(DataTable[Cell]):
    DEFAULT_CSS = """
    RecordTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, columns: Sequence[tuple[str, int | None]], *, id: str) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self._column_spec = columns

    def on_mount(self) -> None:
        for label, width in self._column_spec:
            self.add_column(label, width=width, key=label)

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def replace_rows(
        self, rows: Iterable[tuple[str, Sequence[Cell]]], *, select: str | None = None
    ) -> None:
        """Show ``rows`` (key, cells); the cursor stays on ``select`` or the key it was on."""
        keep = select if select is not None else self.selected_key
        old_index = self.cursor_row
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if self.row_count == 0:
            return
        keys = [r.key.value for r in self.ordered_rows]
        index = keys.index(keep) if keep in keys else min(old_index, self.row_count - 1)
        self.move_cursor(row=max(index, 0), animate=False)
