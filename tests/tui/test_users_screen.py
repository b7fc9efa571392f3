"""The users screen, driven by keys; every change is checked in the store afterwards."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from admin_tui import AdminApp
from admin_tui.modals.quota import QuotaModal
from admin_tui.modals.role import RoleModal
from admin_tui.modals.user_add import AddUserModal
from authproxy.admin.service import AdminService
from authproxy.store.records import UNLIMITED

from .conftest import settle
from .helpers import column, notifications, select_row, table, table_rows, text_of


async def test_lists_users_with_usage_against_quota(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        rows = {r[0]: r for r in table_rows(app)}
        assert list(rows) == ["alice", "bob", "dave", "root"]
        assert rows["alice"][1:3] == ["user", "active"]
        assert rows["alice"][3] == "19k/50k 38%"  # 19,200 tokens today; own tokens/day
        assert rows["alice"][5] == "30"  # own rpm; role has 60
        assert rows["dave"][2] == "disabled"
        assert rows["root"][3] == "1k"  # admins have no limit


async def test_search_narrows_the_list(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("slash", *"example")
        assert column(app, 0) == ["alice", "dave"]
        await pilot.press("enter")  # back to the list, the filter stays
        assert column(app, 0) == ["alice", "dave"]
        await pilot.press("escape")
        assert len(column(app, 0)) == 4


async def test_add_a_user(app: AdminApp, service: AdminService) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, AddUserModal)
        await pilot.press(*"carol")
        await pilot.press("tab", "tab", *"carol@example.com")
        await pilot.press("enter")
        await settle(pilot)
        assert "carol" in column(app, 0)
        assert table(app).selected_key == "carol"
    users = {u.name: u for u in await service.list_users()}
    assert users["carol"].role == "user" and users["carol"].email == "carol@example.com"
    assert (await service.audit_log(since=0))[0].action == "user.add"


async def test_adding_a_duplicate_is_a_notification_not_a_crash(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press(*"alice", "enter")
        await settle(pilot)
        assert any("already exists" in n for n in notifications(app))
        assert app.is_running and app.screen.id == "users-screen"


async def test_an_empty_name_is_refused_in_the_dialog(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, AddUserModal)  # still open, with the reason
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.id == "users-screen"


async def test_change_a_role(app: AdminApp, service: AdminService) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        select_row(app, "bob")
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, RoleModal)
        await pilot.press("up", "enter")  # restricted -> its neighbour above: user
        await settle(pilot)
        assert table_rows(app)[column(app, 0).index("bob")][1] == "user"
    users = {u.name: u for u in await service.list_users()}
    assert users["bob"].role == "user"


async def test_disable_asks_first_and_enable_does_not(app: AdminApp, service: AdminService) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        select_row(app, "alice")
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("n")  # no
        await settle(pilot)
        assert not {u.name: u for u in await service.list_users()}["alice"].disabled
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert {u.name: u for u in await service.list_users()}["alice"].disabled
        select_row(app, "dave")
        await pilot.press("x")  # enabling is not destructive: no question
        await settle(pilot)
    users = {u.name: u for u in await service.list_users()}
    assert users["alice"].disabled and not users["dave"].disabled


async def test_set_a_quota(app: AdminApp, service: AdminService) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        select_row(app, "bob")
        await pilot.press("q")
        await settle(pilot)
        modal = app.screen
        assert isinstance(modal, QuotaModal)
        modal.query_one("#tokens_per_month", Input).value = "unlimited"
        modal.query_one("#tokens_per_day", Input).value = "12,000"
        modal.query_one("#max_concurrent", Input).focus()
        await pilot.press(*"2", "enter")
        await settle(pilot)
        assert table_rows(app)[column(app, 0).index("bob")][6] == "2"
    bob = {u.name: u for u in await service.list_users()}["bob"]
    (report,) = await service.usage_against_quotas(since=0, user_name="bob")
    assert report.override is not None and report.override.user_id == bob.id
    assert report.override.tokens_per_day == 12_000
    assert report.override.tokens_per_month == UNLIMITED
    assert report.override.max_concurrent == 2
    assert report.limits.tokens_per_month is None


@pytest.mark.parametrize("typed", ["lots", "²", "9" * 20], ids=["word", "superscript", "huge"])
async def test_a_bad_quota_value_keeps_the_dialog_open(app: AdminApp, typed: str) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        await pilot.press(*typed, "enter")
        assert isinstance(app.screen, QuotaModal)
        assert "want a number" in text_of(app, "#error")
