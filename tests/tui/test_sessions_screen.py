"""The sessions screen: who is signed in with a browser, and ending a user's sessions."""

from __future__ import annotations

from admin_tui import AdminApp
from admin_tui.modals.confirm import Confirm
from authproxy.admin.service import AdminService
from authproxy.store import open_store

from .conftest import settle
from .helpers import column, notifications, select_row, table_rows, text_of
from .seed import Seeded


async def test_lists_sessions_with_times_and_where_from(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await settle(pilot)
        assert table_rows(app) == [
            ["alice", "oidc", "03-12 09:26", "5m ago", "in 5d", "198.51.100.23"],
            ["alice", "password", "03-14 06:26", "1h ago", "in 6d", "203.0.113.50"],
            ["root", "password", "03-14 09:06", "1m ago", "in 6d", "127.0.0.1"],
        ]
        select_row(app, "root")
        await settle(pilot)
        detail = text_of(app, "#session-detail")
        assert detail.startswith("root (admin) signed in with password 2025-03-14 09:06")
        assert detail.endswith("from 127.0.0.1\nends 2025-03-21 09:06 · (no user agent)")
        await pilot.press("slash", *"iphone")
        await settle(pilot)
        assert column(app, 3) == ["1h ago"]  # the search box looks at the user agent too


async def test_ending_a_users_sessions_asks_first_and_deletes_them(
    app: AdminApp, seeded: Seeded, service: AdminService
) -> None:
    alice, root = seeded.user_ids["alice"], seeded.user_ids["root"]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await settle(pilot)
        select_row(app, "alice")
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, Confirm)
        await pilot.press("escape")  # cancelled: nothing ended
        await settle(pilot)
        assert len(await service.list_sessions("alice")) == 2
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert column(app, 0) == ["root"]
        assert "Ended 2 session(s) of alice." in notifications(app)
    store = await open_store(seeded.config.db_path)
    try:
        assert await store.list_sessions(alice) == []
        assert [s.user_id for s in await store.list_sessions()] == [root]
    finally:
        await store.close()
    entry = (await service.audit_log(since=0))[0]
    assert (entry.action, entry.target, entry.detail) == (
        "session.revoke",
        "alice",
        "sessions_ended=2",
    )
