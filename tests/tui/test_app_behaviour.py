"""App-wide behaviour: nav keys, the command palette, failures shown as notifications."""

from __future__ import annotations

import pytest

from admin_tui import AdminApp, create_app
from admin_tui.modals.user_add import AddUserModal
from authproxy.admin.service import AdminService

from .conftest import settle
from .helpers import notifications


async def test_nav_keys_reach_every_screen(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.id == "dashboard-screen"
        for key, mode in (("u", "users"), ("k", "keys"), ("m", "models"), ("a", "audit")):
            await pilot.press(key)
            await settle(pilot)
            assert app.current_mode == mode and app.screen.id == f"{mode}-screen"
        await pilot.press("d")
        assert app.current_mode == "dashboard"


async def test_letters_typed_into_a_search_box_do_not_switch_screens(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("slash", *"dukam")
        assert app.current_mode == "users"


async def test_command_palette_opens_add_user(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"add user")
        await pilot.pause(0.3)  # the palette searches in the background
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == "users"
        assert isinstance(app.screen, AddUserModal)


async def test_an_unexpected_failure_is_a_notification(
    app: AdminApp, service: AdminService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(user_name: str | None = None) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "list_keys", broken)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("k")
        await settle(pilot)
        assert "unexpected RuntimeError: disk on fire" in notifications(app)
        await pilot.press("u")  # and the app goes on
        await settle(pilot)
        assert app.current_mode == "users"


def test_unknown_start_screen_is_refused(service: AdminService) -> None:
    with pytest.raises(ValueError, match="no screen 'billing'"):
        create_app(service, start="billing")
