"""Time in one place, so tests and windows agree on what "now" is."""

from __future__ import annotations

import time

__all__ = ["now"]


def now() -> float:
    return time.time()
