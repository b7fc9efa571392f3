"""The top line: where you are, and the keys that take you to the other screens."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

# (mode, key, title): the app binds the keys; this line only shows them.
SCREENS = (
    ("dashboard", "d", "Dashboard"),
    ("users", "u", "Users"),
    ("keys", "k", "Keys"),
    ("models", "m", "Models"),
    ("audit", "a", "Audit"),
)


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
        line = Text(" authproxy admin ", style="bold")
        for mode, key, title in SCREENS:
            line.append(" ")
            if mode == self.current:
                line.append(f" {key} {title} ", style="bold reverse")
            else:
                line.append(f" {key}", style="bold")
                line.append(f" {title} ", style="dim")
        return line
