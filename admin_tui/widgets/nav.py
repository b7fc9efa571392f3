"""The top line: where you are, and the keys that take you to the other screens."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

__all__ = ["ALL_SCREENS", "MORE_SCREENS", "SCREENS", "NavBar"]

# (mode, key, title): the app binds the keys; this line only shows them.
SCREENS = (
    ("dashboard", "d", "Dashboard"),
    ("users", "u", "Users"),
    ("keys", "k", "Keys"),
    ("models", "m", "Models"),
    ("audit", "a", "Audit"),
)
# Reached by key and from the palette like the others, but on the line only while shown: the
# line above uses 71 of an SSH terminal's 80 columns.
MORE_SCREENS = (("sessions", "s", "Sessions"),)
ALL_SCREENS = SCREENS + MORE_SCREENS


class NavBar(Static):
    DEFAULT_CSS = """
    NavBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def render(self) -> Text:
        line = self._line(" authproxy admin ")
        if line.cell_len > self.size.width:
            line = self._line(" authproxy ")
        return line

    def _line(self, brand: str) -> Text:
        line = Text(brand, style="bold")
        shown = [s for s in ALL_SCREENS if s in SCREENS or s[0] == self.current]
        for mode, key, title in shown:
            line.append(" ")
            if mode == self.current:
                line.append(f" {key} {title} ", style="bold reverse")
            else:
                line.append(f" {key}", style="bold")
                line.append(f" {title} ", style="dim")
        return line
