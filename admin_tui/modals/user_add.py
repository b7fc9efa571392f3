"""Add a user: name, role, email."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.widgets import Input, Select

from admin_tui.modals.form import FormModal

__all__ = ["AddUserModal", "NewUser"]


@dataclass(frozen=True)
class NewUser:
    name: str
    role: str
    email: str | None


class AddUserModal(FormModal[NewUser]):
    TITLE = "Add a user"
    SUBMIT = "Add"

    def __init__(self, roles: list[str], default_role: str) -> None:
        super().__init__()
        self.roles = roles
        self.default_role = default_role

    def compose_fields(self) -> ComposeResult:
        yield self.field("Name", Input(placeholder="e.g. alice", id="name"))
        yield self.field(
            "Role",
            Select(
                [(r, r) for r in self.roles],
                value=self.default_role,
                allow_blank=False,
                id="role",
            ),
        )
        yield self.field("Email", Input(placeholder="optional", id="email"))

    def result(self) -> NewUser:
        name = self.query_one("#name", Input).value.strip()
        if not name:
            raise ValueError("a user needs a name")
        role = self.query_one("#role", Select).value
        email = self.query_one("#email", Input).value.strip() or None
        return NewUser(name, str(role), email)
