from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from authproxy.config.schema import Role
from authproxy.limits.quota import resolve_limits
from authproxy.limits.windows import CalendarWindows
from authproxy.store.records import UNLIMITED, QuotaOverride


def _ts(text: str, zone: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_day_and_month_in_a_time_zone() -> None:
    windows = CalendarWindows(timezone="Europe/Berlin")
    t = _ts("2026-03-15 13:00", "Europe/Berlin")
    assert windows.day(t) == (
        _ts("2026-03-15 00:00", "Europe/Berlin"),
        _ts("2026-03-16 00:00", "Europe/Berlin"),
    )
    assert windows.month(t) == (
        _ts("2026-03-01 00:00", "Europe/Berlin"),
        _ts("2026-04-01 00:00", "Europe/Berlin"),
    )


def test_a_day_with_a_clock_change_is_23_hours_long() -> None:
    windows = CalendarWindows(timezone="Europe/Berlin")
    start, end = windows.day(_ts("2026-03-29 12:00", "Europe/Berlin"))
    assert end - start == 23 * 3600


def test_december_rolls_into_january() -> None:
    windows = CalendarWindows(timezone="UTC")
    _, end = windows.month(_ts("2026-12-31 23:59", "UTC"))
    assert end == _ts("2027-01-01 00:00", "UTC")


def test_overrides_on_top_of_the_role() -> None:
    role = Role(
        requests_per_minute=60, max_concurrent=4, tokens_per_day=1000, tokens_per_month=None
    )
    assert resolve_limits(role, None).tokens_per_day == 1000
    override = QuotaOverride(1, requests_per_minute=UNLIMITED, tokens_per_month=5, max_concurrent=0)
    limits = resolve_limits(role, override)
    assert limits.requests_per_minute is None  # unlimited for this user
    assert limits.tokens_per_month == 5
    assert limits.max_concurrent == 0  # a limit of zero refuses everything
    assert limits.tokens_per_day == 1000  # not overridden: the role's
    assert resolve_limits(None, None).tokens_per_day is None
