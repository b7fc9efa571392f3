"""A small dialog of fields: Enter submits, Escape cancels, a bad value is said in place."""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

__all__ = ["FormModal"]

T = TypeVar("T")


class FormModal(ModalScreen[T | None], Generic[T]):
    DEFAULT_CSS = """
    FormModal {
        align: center middle;
    }
    FormModal > Vertical {
        width: 70;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $accent;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    FormModal .row {
        height: auto;
    }
    FormModal .row > Label {
        width: 16;
        padding: 1 0 0 1;
    }
    FormModal .row > Input, FormModal .row > Select {
        width: 1fr;
    }
    FormModal .hint {
        color: $text-muted;
        padding: 0 1;
    }
    FormModal #error {
        color: $error;
        height: auto;
    }
    FormModal .buttons {
        height: auto;
        align-horizontal: right;
    }
    FormModal Button {
        margin-left: 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    TITLE: ClassVar[str] = ""
    SUBMIT: ClassVar[str] = "Save"

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.heading()
            yield from self.compose_fields()
            yield Static("", id="error")
            with Horizontal(classes="buttons"):
                yield Button(self.SUBMIT, variant="primary", id="submit")
                yield Button("Cancel", id="cancel")

    def heading(self) -> str:
        return self.TITLE

    def compose_fields(self) -> ComposeResult:
        raise NotImplementedError

    def result(self) -> T:
        """The form's value; raise ValueError with a reason if a field is wrong."""
        raise NotImplementedError

    @staticmethod
    def field(label: str, widget: Widget) -> Horizontal:
        """One labelled row."""
        return Horizontal(Label(label), widget, classes="row")

    @staticmethod
    def hint(text: str) -> Static:
        return Static(text, classes="hint")

    def action_submit(self) -> None:
        try:
            value = self.result()
        except ValueError as exc:
            self.query_one("#error", Static).update(str(exc))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()
