"""Models: configured, discovered and aliased; who serves them, enabled or not, which roles may
use them."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from admin_tui.context import Context
from admin_tui.modals.confirm import Confirm
from admin_tui.screens.listing import TableScreen
from admin_tui.widgets.table import Cell, RecordTable
from authproxy.upstreams.status import ModelInfo

__all__ = ["COLUMNS", "ModelsScreen", "roles_text", "source"]

COLUMNS = [
    ("Model", 20),
    ("Served by", 14),
    ("Source", 10),
    ("Status", 8),
    ("Roles", 15),
]


def source(m: ModelInfo) -> str:
    if m.alias_of is not None:
        return "alias"
    if m.configured and m.discovered:
        return "both"
    if m.configured:
        return "config"
    return "discovered" if m.discovered else "-"


def roles_text(roles: tuple[str, ...], every: list[str]) -> str:
    if not roles:
        return "(no role)"
    return "every role" if set(roles) == set(every) else ", ".join(roles)


class ModelsScreen(TableScreen):
    MODE = "models"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "switch", "Enable/disable"),
        Binding("space", "switch", "Enable/disable", show=False),
    ]

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.models: list[ModelInfo] = []
        self.unreachable: list[str] = []

    def compose_body(self) -> ComposeResult:
        yield Static("Asking the engines which models they serve…", id="models-note")
        yield RecordTable(COLUMNS, id="models-table")
        yield Static("", id="model-detail", classes="detail")

    def selected(self) -> ModelInfo | None:
        key = self.table.selected_key
        return next((m for m in self.models if m.name == key), None)

    def reload(self) -> None:
        self._load()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self) -> None:
        overview = await self.service.models_overview()
        self.models, self.unreachable = overview.models, overview.unreachable
        rows = []
        for m in self.models:
            state = Text("enabled", style="green") if m.enabled else Text("disabled", style="red")
            cells: list[Cell] = [
                m.name,
                ", ".join(m.upstreams) or "(none)",
                source(m),
                state,
                roles_text(m.roles, list(self.service.config.roles)),
            ]
            rows.append((m.name, cells))
        self.table.replace_rows(rows)
        note = f"{len(self.models)} model(s)."
        if self.unreachable:
            note += f" Could not ask {', '.join(self.unreachable)} for its models."
        self.query_one("#models-note", Static).update(note)
        self._detail()

    def _detail(self) -> None:
        m = self.selected()
        if m is None:
            text = "No model selected."
        else:
            alias = f"alias of {m.alias_of}, " if m.alias_of else ""
            text = (
                f"{m.name}: {alias}served by {', '.join(m.upstreams) or 'no upstream right now'}"
                f"\nroles the config allows: {', '.join(m.roles) or 'none'}"
            )
        self.query_one("#model-detail", Static).update(text)

    @work(group="action", exit_on_error=False)
    async def action_switch(self) -> None:
        m = self.selected()
        if m is None:
            self.notify("Select a model first.", severity="warning")
            return
        if m.enabled:
            question = f"Disable {m.name}? Requests for it are refused within a second."
            if not await self.app.push_screen_wait(Confirm(question, yes="Disable")):
                return
        setting = await self.service.set_model_enabled(m.name, not m.enabled)
        self.notify(f"{'Enabled' if setting.enabled else 'Disabled'} {setting.name}.")
        self.reload()
