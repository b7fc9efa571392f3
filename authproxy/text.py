"""Whole numbers typed by people: a key id in a form, a count or a limit on the command line.

``str.isdigit`` is true for ``²`` and ``٣``; ``int`` accepts ``٣`` (as 3), `` 7 ``, ``+7`` and
``1_000`` but fails on ``²`` and on more than 4300 digits; SQLite fails past 2**63 - 1. So a
check with ``isdigit`` before ``int`` is no check. Here only ASCII digits count, and the value
must fit in a SQLite integer.
"""

from __future__ import annotations

SQL_MAX = 2**63 - 1
_MAX_DIGITS = len(str(SQL_MAX))


def whole_number(text: object, *, maximum: int = SQL_MAX) -> int | None:
    """``text`` as a number 0..``maximum``, or None when it is anything else."""
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_DIGITS:
        return None
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= maximum else None
