"""Screenshots of every screen at 80x24 (an SSH terminal) and some at 120x40, compared with
the stored SVGs (`pytest --snapshot-update` to accept a deliberate change).

Deterministic: a fixed clock, seeded data, predictable keys, an upstream that refuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest
from textual.pilot import Pilot

from admin_tui import AdminApp

from .conftest import settle
from .helpers import select_row

SnapCompare = Callable[..., bool]
SMALL, LARGE = (80, 24), (120, 40)


def steps(
    *keys: str, row: str | None = None, after: Iterable[str] = ()
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Press ``keys``, put the cursor on ``row``, press ``after``; wait for the data each time."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if row is not None:
            select_row(pilot.app, row)
            await settle(pilot)
        for key in after:
            await pilot.press(key)
            await settle(pilot)

    return run


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_dashboard(snap_compare: SnapCompare, app: AdminApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=steps())


def test_dashboard_with_a_busy_queue(snap_compare: SnapCompare, busy_app: AdminApp) -> None:
    assert snap_compare(busy_app, terminal_size=SMALL, run_before=steps())


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_users(snap_compare: SnapCompare, app: AdminApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=steps("u", row="alice"))


def test_users_quota_dialog(snap_compare: SnapCompare, app: AdminApp) -> None:
    assert snap_compare(app, terminal_size=SMALL, run_before=steps("u", row="alice", after="q"))


def test_users_add_dialog(snap_compare: SnapCompare, app: AdminApp) -> None:
    assert snap_compare(app, terminal_size=SMALL, run_before=steps("u", after="n"))


def test_keys(snap_compare: SnapCompare, app: AdminApp) -> None:
    assert snap_compare(app, terminal_size=SMALL, run_before=steps("k"))


def test_keys_revoke_confirmation(snap_compare: SnapCompare, app: AdminApp) -> None:
    assert snap_compare(app, terminal_size=SMALL, run_before=steps("k", row="2", after="x"))


def test_keys_new_key_shown_once(snap_compare: SnapCompare, app: AdminApp) -> None:
    create = steps("u", row="bob", after=["c", "enter"])  # no label, no expiry
    assert snap_compare(app, terminal_size=SMALL, run_before=create)


def test_models(snap_compare: SnapCompare, app: AdminApp) -> None:
    assert snap_compare(app, terminal_size=SMALL, run_before=steps("m"))


def test_audit(snap_compare: SnapCompare, app: AdminApp) -> None:
    assert snap_compare(app, terminal_size=SMALL, run_before=steps("a"))


def test_sessions(snap_compare: SnapCompare, app: AdminApp) -> None:
    assert snap_compare(app, terminal_size=SMALL, run_before=steps("s", row="root"))
