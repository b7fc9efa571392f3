"""Numbers, times and limits as the admin reads them: short enough for 80 columns."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from authproxy.store.records import UNLIMITED

__all__ = [
    "against",
    "ago",
    "compact",
    "day",
    "limit",
    "override",
    "short_time",
    "span",
    "timestamp",
    "until",
]


def compact(n: int) -> str:
    """1234 -> 1.2k, 4000000 -> 4M: a number in at most five characters."""
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= size:
            value = n / size
            text = f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"
            return text.removesuffix(".0") + suffix
    return str(n)


def limit(value: int | None) -> str:
    """A resolved limit: None means there is none."""
    return "∞" if value is None else compact(value)


def override(value: int | None) -> str:
    """A per-user override as typed in the quota form: blank = the role's value."""
    if value is None:
        return ""
    return "unlimited" if value == UNLIMITED else str(value)


def against(used: int, cap: int | None) -> str:
    """``12k/200k 6%`` (or just ``12k`` with no limit)."""
    if cap is None:
        return compact(used)
    pct = f" {100 * used // cap}%" if cap else ""
    return f"{compact(used)}/{compact(cap)}{pct}"


def timestamp(ts: float | None, zone: ZoneInfo) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")


def short_time(ts: float, zone: ZoneInfo) -> str:
    """``03-14 09:26``: month, day and time, for long lists."""
    return datetime.fromtimestamp(ts, zone).strftime("%m-%d %H:%M")


def day(ts: float | None, zone: ZoneInfo) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d")


def span(seconds: float) -> str:
    """A rough duration: 45s, 12m, 5h, 3d."""
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def ago(ts: float | None, now: float) -> str:
    return "never" if ts is None else f"{span(now - ts)} ago"


def until(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    return f"in {span(ts - now)}" if ts > now else "expired"
