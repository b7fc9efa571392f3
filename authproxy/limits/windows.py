"""Calendar windows for token quotas: the day and the month, in a configured time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["CalendarWindows"]


class CalendarWindows:
    """Start and end (epoch seconds) of the current local day and month."""

    def __init__(self, *, timezone: str) -> None:
        self._zone = ZoneInfo(timezone)

    def day(self, ts: float) -> tuple[float, float]:
        local = datetime.fromtimestamp(ts, self._zone)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=1, hours=3)).replace(hour=0)  # DST-safe next midnight
        return self._epoch(start), self._epoch(end)

    def month(self, ts: float) -> tuple[float, float]:
        local = datetime.fromtimestamp(ts, self._zone)
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        return self._epoch(start), self._epoch(end)

    def _epoch(self, local: datetime) -> float:
        # Re-attach the zone so a DST change between the two dates is accounted for.
        return local.replace(tzinfo=self._zone).timestamp()
