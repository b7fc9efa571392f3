"""What the admin dashboard shows: recent traffic from the usage and audit tables.

Built from two indexed range queries; the caller passes the time, so a report is
reproducible (the TUI's tests run it under a fixed clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from authproxy.store.contracts import AuditStore, UsageStore
from authproxy.store.records import UsageBucket, UsageSummary

__all__ = ["Dashboard", "ReportStore", "Tally", "build_dashboard"]


@dataclass(frozen=True, slots=True)
class Tally:
    """Requests and tokens of one user or one model within the report's window."""

    name: str
    requests: int
    tokens: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    at: float
    window: float
    timeline: list[UsageBucket]  # oldest first; the last slice ends at ``at``
    per_user: list[Tally]  # busiest first
    per_model: list[Tally]
    auth_failures: int  # failed authentications within the window
    auth_blocks: int  # addresses blocked for too many failures within the window

    @property
    def requests(self) -> int:
        return sum(b.requests for b in self.timeline)

    @property
    def tokens(self) -> int:
        return sum(b.tokens for b in self.timeline)

    @property
    def errors(self) -> int:
        return sum(b.errors for b in self.timeline)

    @property
    def last(self) -> UsageBucket | None:
        """The most recent slice (the last minute, by default)."""
        return self.timeline[-1] if self.timeline else None


class ReportStore(UsageStore, AuditStore, Protocol):
    """What the dashboard reads: the usage table and the audit log."""


def _tallies(rows: list[UsageSummary], key: str) -> list[Tally]:
    totals: dict[str, list[int]] = {}
    for r in rows:
        name = (r.user_name if key == "user" else r.model) or "-"
        t = totals.setdefault(name, [0, 0])
        t[0] += r.requests
        t[1] += r.prompt_tokens + r.completion_tokens
    tallies = [Tally(name, req, tok) for name, (req, tok) in totals.items()]
    return sorted(tallies, key=lambda t: (-t.tokens, -t.requests, t.name))


async def build_dashboard(
    store: ReportStore, *, at: float, window: float = 3600.0, width: float = 60.0
) -> Dashboard:
    """Slices of ``width`` seconds ending at ``at`` (a sliding window, so the last slice is
    always a full minute), and who and what used the gateway in the last ``window``."""
    slices = max(1, round(window / width))
    since = at - slices * width
    timeline = await store.usage_timeline(since=since, until=at, width=width)
    summary = await store.usage_summary(since=since)
    counts = await store.audit_counts(since=since)
    return Dashboard(
        at=at,
        window=slices * width,
        timeline=timeline,
        per_user=_tallies(summary, "user"),
        per_model=_tallies(summary, "model"),
        auth_failures=counts.get("auth.failed", 0),
        auth_blocks=counts.get("auth.blocked", 0),
    )
