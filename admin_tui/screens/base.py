"""What every top-level screen shares: the nav line, the footer, and the error net.

Every worker a screen starts runs with ``exit_on_error=False``; when one fails, the failure
becomes a notification here instead of a traceback.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from admin_tui.context import Context
from admin_tui.widgets.nav import NavBar
from authproxy.admin.service import AdminError, AdminService
from authproxy.store.base import StoreError

__all__ = ["AdminScreen", "describe"]


def describe(error: BaseException) -> str:
    """One line for a notification: the service's own words, else the exception's."""
    if isinstance(error, AdminError | StoreError | ValueError):
        return str(error)
    return f"unexpected {type(error).__name__}: {error}"


class AdminScreen(Screen[None]):
    MODE: ClassVar[str] = ""
    AUTO_FOCUS = "RecordTable"  # the list, not the search box: letter keys are actions
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reload", "Refresh", show=False),
    ]

    def __init__(self, context: Context) -> None:
        super().__init__(id=f"{self.MODE}-screen")
        self.context = context

    @property
    def service(self) -> AdminService:
        return self.context.service

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def reload(self) -> None:
        """Fetch this screen's data again (in a worker)."""

    def action_reload(self) -> None:
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(describe(event.worker.error), title="Failed", severity="error")
