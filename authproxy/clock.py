"""Time in one place, so tests and windows agree on what "now" is."""

from __future__ import annotations

import time


def now() -> float:
    return time.time()
