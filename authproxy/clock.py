"""Time in one place, so tests and windows agree on what "now" is."""

from __future__ import annotations

import time

from authproxy.text import whole_number

MAX_DURATION = 100 * 365 * 86400  # beyond this, dates are past what can be printed


def now() -> float:
    return time.time()


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` -> seconds; ValueError with a clear text."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    text = text.strip().lower()
    count = whole_number(text[:-1])
    if len(text) < 2 or text[-1] not in units or count is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30d, 12h, 15m)")
    value = count * units[text[-1]]
    if value <= 0:
        raise ValueError(f"not a positive duration: {text!r}")
    if value > MAX_DURATION:
        raise ValueError(f"too long a duration: {text!r} (at most 100 years)")
    return float(value)
