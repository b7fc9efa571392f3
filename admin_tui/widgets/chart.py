"""A titled sparkline: one value per minute, the caption says the scale."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from admin_tui import formatting as fmt

__all__ = ["TrafficChart", "peak_caption"]


class TrafficChart(Vertical):
    DEFAULT_CSS = """
    TrafficChart {
        height: auto;
    }
    TrafficChart > Label {
        color: $text-muted;
        padding: 0 1;
    }
    TrafficChart > Sparkline {
        height: 2;
        margin: 0 1;
    }
    """

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id)
        self.title = title

    def compose(self) -> ComposeResult:
        yield Label(self.title)
        yield Sparkline([], summary_function=max)

    def show(self, values: Sequence[float], caption: str) -> None:
        self.query_one(Label).update(f"{self.title} · {caption}")
        self.query_one(Sparkline).data = list(values)


def peak_caption(values: Sequence[int], unit: str) -> str:
    peak = max(values, default=0)
    return f"peak {fmt.compact(peak)} {unit}/min"
