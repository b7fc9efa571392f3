"""Create a key: for whom, a label, when it expires, and whether it is a service key."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Checkbox, Input, Select

from admin_tui.modals.form import FormModal
from authproxy.text import parse_duration

__all__ = ["CreateKeyModal", "KeyRequest"]


@dataclass(frozen=True)
class KeyRequest:
    user: str
    label: str | None
    expires_in: float | None  # seconds from now; None = never
    acts_for_users: bool = False  # a service key (Open WebUI): may name the person served


class CreateKeyModal(FormModal[KeyRequest]):
    TITLE = "Create a key"
    SUBMIT = "Create"

    def __init__(self, users: list[str], user: str | None = None) -> None:
        super().__init__()
        self.users = users
        self.user = user if user in users else None

    def compose_fields(self) -> ComposeResult:
        yield self.field(
            "User",
            Select(
                [(u, u) for u in self.users],
                value=self.user if self.user else Select.NULL,
                prompt="choose a user",
                id="user",
            ),
        )
        yield self.field("Label", Input(placeholder="optional, e.g. laptop", id="label"))
        yield self.field("Expires in", Input(placeholder="never; or e.g. 30d, 12h", id="expires"))
        yield self.field(
            "Service key", Checkbox("acts for the users it names (Open WebUI)", id="acts")
        )

    def on_mount(self) -> None:
        if self.user:
            self.query_one("#label", Input).focus()

    def result(self) -> KeyRequest:
        user = self.query_one("#user", Select).value
        if not isinstance(user, str):
            raise ValueError("choose the user the key is for")
        label = self.query_one("#label", Input).value.strip() or None
        expires = self.query_one("#expires", Input).value.strip()
        acts = self.query_one("#acts", Checkbox).value
        return KeyRequest(user, label, parse_duration(expires) if expires else None, acts)
