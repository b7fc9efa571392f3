"""The models screen (enable / disable, roles) and the audit log (filter, period)."""

from __future__ import annotations

from admin_tui import AdminApp
from admin_tui.modals.confirm import Confirm
from authproxy.admin.service import AdminService

from .conftest import settle
from .helpers import column, select_row, table_rows, text_of


async def test_models_show_source_status_and_roles(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("m")
        await settle(pilot)
        assert table_rows(app) == [
            ["big", "local", "config", "disabled", "admin, user"],
            ["fast", "local", "alias", "enabled", "admin, user"],
            ["tiny", "local", "config", "enabled", "every role"],
        ]
        assert text_of(app, "#models-note") == "3 model(s)."
        select_row(app, "fast")
        await settle(pilot)
        assert text_of(app, "#model-detail").startswith("fast: alias of tiny, served by local")


async def test_disabling_a_model_asks_enabling_does_not(
    app: AdminApp, service: AdminService
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("m")
        await settle(pilot)
        select_row(app, "big")
        await pilot.press("e")
        await settle(pilot)
        assert not isinstance(app.screen, Confirm)
        select_row(app, "tiny")
        await pilot.press("space")
        await settle(pilot)
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await settle(pilot)
        assert column(app, 3) == ["enabled", "enabled", "disabled"]
    settings = {s.name: s.enabled for s in await service.model_settings()}
    assert settings == {"big": True, "tiny": False}


async def test_audit_filter_and_period(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await settle(pilot)
        assert len(table_rows(app)) == 8  # the last 7 days
        assert table_rows(app)[0] == [  # newest first
            "03-14 09:22",
            "anonymous",
            "auth.failed",
            "-",
            "reason=unknown_key",
            "203.0.113.7",
        ]
        await pilot.press("slash", *"203.0")
        assert column(app, 2) == ["auth.failed"] * 3
        assert text_of(app, "#audit-detail").startswith(
            "3 of 8 shown · 2025-03-14 09:22 anonymous: auth.failed from 203"
        )
        await pilot.press("escape", "p")  # clear the filter; 7d -> 30d
        await settle(pilot)
        assert len(table_rows(app)) == 15
        assert text_of(app, "#period") == "last 30d (p)"
        await pilot.press("p")  # 30d -> 1h
        await settle(pilot)
        assert column(app, 2) == ["auth.failed"] * 3
