"""Live traffic: requests and tokens per minute, who and what, auth failures, upstream health,
and from the running gateway's /metrics its open streams, quota rejections and who is waiting
in its fair queues.

Refreshed every ``Context.refresh_interval`` seconds by a timer that starts workers, so a slow
database or a dead engine never blocks the keyboard. Times come from the injected clock.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static
from textual.worker import Worker

from admin_tui import formatting as fmt
from admin_tui.context import Context
from admin_tui.screens.base import AdminScreen
from admin_tui.widgets.chart import TrafficChart, peak_caption
from admin_tui.widgets.table import Cell, RecordTable
from authproxy.admin.gateway_status import GatewayStatus
from authproxy.admin.reports import Dashboard, Tally
from authproxy.upstreams.status import UpstreamHealth

__all__ = [
    "DashboardScreen",
    "gateway_text",
    "health_text",
    "plural",
    "queue_text",
    "stats_text",
]

SHOWN_WAITING = 4  # users named on the queue line; the rest are counted


def _rows(tallies: list[Tally]) -> list[tuple[str, list[Cell]]]:
    return [(t.name, [t.name, fmt.compact(t.requests), fmt.compact(t.tokens)]) for t in tallies]


def plural(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun}{'es' if noun.endswith('ss') else 's'}"


def stats_text(board: Dashboard, zone_time: str) -> Text:
    last = board.last
    text = Text()
    text.append("Last minute  ", style="bold")
    text.append(f"{fmt.compact(last.requests if last else 0)} requests · ")
    text.append(f"{fmt.compact(last.tokens if last else 0)} tokens")
    text.append(f"    as of {zone_time}\n", style="dim")
    text.append("Last hour    ", style="bold")
    text.append(f"{fmt.compact(board.requests)} requests · {fmt.compact(board.tokens)} tokens · ")
    text.append(plural(board.errors, "error"), style="red" if board.errors else "")
    text.append(" · ")
    failures = board.auth_failures
    text.append(plural(failures, "auth failure"), style="yellow" if failures else "")
    if board.auth_blocks:
        text.append(f" · {plural(board.auth_blocks, 'address')} blocked", style="bold red")
    return text


def health_text(health: list[UpstreamHealth] | None) -> Text:
    text = Text("Upstreams  ", style="bold")
    if health is None:
        return text.append("checking…", style="dim")
    for h in health:
        if h.up:
            text.append(f"● {h.name} up  ", style="green")
        else:
            text.append(f"○ {h.name} down ({h.detail})  ", style="red")
    return text


def gateway_text(status: GatewayStatus | None) -> Text:
    text = Text("Gateway    ", style="bold")
    if status is None:
        return text.append("checking…", style="dim")
    if not status.reachable:
        where = status.url.removeprefix("http://").removesuffix("/metrics")
        return text.append(f"○ {status.detail} at {where}", style="yellow")
    text.append(f"● {plural(status.open_streams, 'open stream')} · ", style="green")
    rejected = plural(status.rejections, "quota rejection")
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(status.quota_rejections.items()) if v)
    text.append(rejected + " since start", style="yellow" if status.rejections else "")
    return text.append(f" ({reasons})" if reasons else "")


def queue_text(status: GatewayStatus | None) -> Text:
    """Who waits for a slot, most waiting first, from the gateway's fair queues."""
    text = Text("Queue      ", style="bold")
    if status is None:
        return text.append("checking…", style="dim")
    queue = status.queue
    if not status.reachable:
        return text.append("unknown without the gateway", style="dim")
    if not queue.queues:
        return text.append("off (no upstream has max_inflight)", style="dim")
    busy = queue.in_flight >= queue.capacity
    text.append(f"{queue.in_flight}/{queue.capacity} slots busy", style="yellow" if busy else "")
    text.append(" · ")
    if queue.waiting:
        ranked = sorted(queue.waiting_by_user.items(), key=lambda kv: (-kv[1], kv[0]))
        names = ", ".join(f"{user} {n}" for user, n in ranked[:SHOWN_WAITING])
        more = len(ranked) - SHOWN_WAITING
        text.append(f"waiting: {names}" + (f", +{more} more" if more > 0 else ""), style="bold")
    else:
        text.append("nobody waiting", style="green")
    if queue.refused:
        text.append(f" · {queue.refused} refused", style="yellow")
    return text


class DashboardScreen(AdminScreen):
    MODE = "dashboard"

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._fetching: dict[str, Worker[None]] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("Loading…", id="stats")
        yield TrafficChart("Requests per minute, last hour", id="requests-chart")
        yield TrafficChart("Tokens per minute, last hour", id="tokens-chart")
        with Horizontal(id="tallies"):
            with Vertical():
                yield Label("By user, last hour", classes="caption")
                yield RecordTable([("User", 14), ("Requests", 8), ("Tokens", 8)], id="by-user")
            with Vertical():
                yield Label("By model, last hour", classes="caption")
                yield RecordTable([("Model", 14), ("Requests", 8), ("Tokens", 8)], id="by-model")
        yield Static(gateway_text(None), id="gateway")
        yield Static(queue_text(None), id="queue")
        yield Static(health_text(None), id="upstreams")

    def on_mount(self) -> None:
        self.set_interval(self.context.refresh_interval, self._tick, name="dashboard-refresh")

    def _tick(self) -> None:
        if self.is_current:
            self.reload()

    def reload(self) -> None:
        """Start each fetch unless the previous one is still under way: a slow database or
        engine is then asked less often instead of being asked again and again."""
        for name, start in (("load", self._load), ("health", self._probe), ("gw", self._scrape)):
            worker = self._fetching.get(name)
            if worker is None or worker.is_finished:
                self._fetching[name] = start()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def _load(self) -> None:
        at = self.context.clock()
        board = await self.service.dashboard(at=at)
        self.query_one("#stats", Static).update(
            stats_text(board, fmt.timestamp(at, self.context.zone))
        )
        requests = [b.requests for b in board.timeline]
        tokens = [b.tokens for b in board.timeline]
        self.query_one("#requests-chart", TrafficChart).show(
            requests, peak_caption(requests, "requests")
        )
        self.query_one("#tokens-chart", TrafficChart).show(tokens, peak_caption(tokens, "tokens"))
        self.query_one("#by-user", RecordTable).replace_rows(_rows(board.per_user))
        self.query_one("#by-model", RecordTable).replace_rows(_rows(board.per_model))

    @work(exclusive=True, group="health", exit_on_error=False)
    async def _probe(self) -> None:
        health = await self.service.upstream_health()
        self.query_one("#upstreams", Static).update(health_text(health))

    @work(exclusive=True, group="gateway", exit_on_error=False)
    async def _scrape(self) -> None:
        status = await self.service.gateway_status()
        self.query_one("#gateway", Static).update(gateway_text(status))
        self.query_one("#queue", Static).update(queue_text(status))
