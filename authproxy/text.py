"""Values people type: a whole number (a key id in a form, a count or a limit on the command
line), a duration (``30d``) and a user name.

``str.isdigit`` is true for ``²`` and ``٣``; ``int`` accepts ``٣`` (as 3), `` 7 ``, ``+7`` and
``1_000`` but fails on ``²`` and on more than 4300 digits; SQLite fails past 2**63 - 1. So a
check with ``isdigit`` before ``int`` is no check. Here only ASCII digits count, and the value
must fit in a SQLite integer.
"""

from __future__ import annotations

__all__ = ["MAX_DURATION", "SQL_MAX", "parse_duration", "valid_user_name", "whole_number"]

SQL_MAX = 2**63 - 1
_MAX_DIGITS = len(str(SQL_MAX))
MAX_DURATION = 100 * 365 * 86400  # beyond this, dates are past what can be printed


def whole_number(text: object, *, maximum: int = SQL_MAX) -> int | None:
    """``text`` as a number 0..``maximum``, or None when it is anything else."""
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_DIGITS:
        return None
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= maximum else None


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


def valid_user_name(name: str) -> bool:
    """At most 64 printable characters, no leading or trailing space (an e-mail address
    or a provider's ``sub`` usually is one)."""
    return 0 < len(name) <= 64 and name.isprintable() and name.strip() == name
