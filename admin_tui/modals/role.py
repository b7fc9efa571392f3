"""Pick a role from the configured ones."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

__all__ = ["RoleModal"]


class RoleModal(ModalScreen[str | None]):
    DEFAULT_CSS = """
    RoleModal {
        align: center middle;
    }
    RoleModal > Vertical {
        width: 50;
        height: auto;
        max-height: 100%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    RoleModal OptionList {
        height: auto;
        max-height: 12;
    }
    RoleModal .hint {
        color: $text-muted;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, user: str, roles: list[str], current: str) -> None:
        super().__init__()
        self.user = user
        self.roles = roles
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Role of {self.user}"
            yield OptionList(*(Option(r, id=r) for r in self.roles), id="roles")
            yield Static("Enter: choose   Escape: cancel", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.roles:
            options.highlighted = self.roles.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
