"""What every screen is given: the admin service, the clock, and how often to refresh."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from authproxy.admin.service import AdminService

__all__ = ["Clock", "Context"]

Clock = Callable[[], float]


@dataclass(frozen=True)
class Context:
    service: AdminService
    clock: Clock = time.time
    refresh_interval: float = 5.0  # seconds between dashboard refreshes

    @property
    def zone(self) -> ZoneInfo:
        """Times are shown in the zone whose days and months the quotas count."""
        return ZoneInfo(self.service.config.quotas.timezone)
