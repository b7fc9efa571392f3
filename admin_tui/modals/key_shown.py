"""The new key, shown once, with a copy action (OSC 52: works over SSH in most terminals)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

__all__ = ["KeyShownModal"]


class KeyShownModal(ModalScreen[None]):
    DEFAULT_CSS = """
    KeyShownModal {
        align: center middle;
    }
    KeyShownModal > Vertical {
        width: 76;
        max-width: 100%;
        height: auto;
        border: thick $success;
        background: $surface;
        padding: 0 1;
    }
    KeyShownModal #secret {
        margin: 1 0;
        padding: 0 1;
        background: $boost;
        text-style: bold;
    }
    KeyShownModal .warn {
        color: $warning;
    }
    KeyShownModal .buttons {
        height: auto;
        align-horizontal: right;
    }
    KeyShownModal Button {
        margin-left: 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, user: str, secret: str) -> None:
        super().__init__()
        self.user = user
        self.secret = secret

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"New key for {self.user}"
            yield Static(self.secret, id="secret", markup=False)
            yield Static("This is the only time the key is shown: copy it now.", classes="warn")
            with Horizontal(classes="buttons"):
                yield Button("Copy (c)", variant="primary", id="copy")
                yield Button("Done", id="done")

    def on_mount(self) -> None:
        self.query_one("#done", Button).focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.secret)
        self.notify("Key copied to the clipboard.", title="Copied")

    def action_close(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.action_close()
