"""The keys screen: per user, create (shown once, copyable), revoke with confirmation."""

from __future__ import annotations

import pytest
from textual.widgets import Checkbox, Select

from admin_tui import AdminApp
from admin_tui.modals.confirm import Confirm
from admin_tui.modals.key_create import CreateKeyModal
from admin_tui.modals.key_shown import KeyShownModal
from authproxy.admin.service import AdminService
from authproxy.auth.keys import KeyHasher, display_prefix
from authproxy.auth.secret import load_or_create_secret
from authproxy.store import open_store

from .conftest import settle
from .helpers import column, notifications, select_row, table_rows, text_of
from .seed import Seeded


async def test_lists_keys_with_expiry_and_status(app: AdminApp, seeded: Seeded) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("k")
        await settle(pilot)
        rows = {r[3]: r for r in table_rows(app)}  # by label
        assert set(rows) == {"ops", "laptop", "old", "ci"}
        assert rows["laptop"][1:3] == ["alice", "sk-BBBBBB…"]
        assert rows["laptop"][4:] == ["in 11d", "2m ago", "active"]
        assert rows["old"][6] == "revoked"
        assert rows["ci"][4:] == ["expired", "never", "expired"]


async def test_enter_on_a_user_shows_their_keys_escape_shows_all(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        select_row(app, "alice")
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == "keys"
        assert set(column(app, 1)) == {"alice"} and len(column(app, 1)) == 2
        assert "Keys of alice" in text_of(app, "#key-detail")
        await pilot.press("escape")
        await settle(pilot)
        assert len(column(app, 1)) == 4


async def test_create_a_key_shown_once_and_copied(
    app: AdminApp, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied: list[str] = []
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        select_row(app, "bob")
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CreateKeyModal)
        await pilot.press(*"phone", "tab", *"7d", "enter")
        await settle(pilot)
        assert isinstance(app.screen, KeyShownModal)
        shown = text_of(app, "#secret")
        await pilot.press("c")
        assert copied == [shown]
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.id == "users-screen"
        assert any("created for bob" in n for n in notifications(app))

    store = await open_store(seeded.config.db_path)
    try:
        (record,) = [k for k in await store.list_keys() if k.label == "phone"]
        active = {k.key_id: k for k in await store.active_keys()}
    finally:
        await store.close()
    assert record.user_name == "bob" and record.prefix == display_prefix(shown)
    assert record.expires_at == record.created_at + 7 * 86400
    hasher = KeyHasher(secret=load_or_create_secret(seeded.config.secret_path, create=False))
    assert active[record.id].key_hash == hasher.digest(shown)  # the key shown is the key stored


async def test_create_from_the_keys_screen_choosing_the_user(
    app: AdminApp, service: AdminService
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("k")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        modal = app.screen
        assert isinstance(modal, CreateKeyModal)
        await pilot.press("tab", "enter")  # submit from the label, without a user: refused
        assert "choose the user" in text_of(app, "#error")
        await pilot.press("shift+tab", "enter", "down", "enter")  # open the list, pick alice
        assert modal.query_one("#user", Select).value == "alice"
        await pilot.press("tab", "tab", *"soon", "enter")  # an expiry that is not a duration
        assert "not a duration" in text_of(app, "#error")
        await pilot.press(*["backspace"] * 4, "enter")
        await settle(pilot)
        assert isinstance(app.screen, KeyShownModal)
        await pilot.press("escape")
        await settle(pilot)
    keys = await service.list_keys("alice")
    assert len(keys) == 3 and keys[-1].expires_at is None


async def test_revoke_asks_first(app: AdminApp, seeded: Seeded, service: AdminService) -> None:
    laptop = str(seeded.key_ids["laptop"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("k")
        await settle(pilot)
        select_row(app, laptop)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, Confirm)
        await pilot.press("escape")
        await settle(pilot)
        assert all(
            k.revoked_at is None for k in await service.list_keys("alice") if k.label == "laptop"
        )
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        row = table_rows(app)[column(app, 0).index(laptop)]
        assert row[6] == "revoked"
        await pilot.press("x")  # again: nothing to confirm
        await settle(pilot)
        assert not isinstance(app.screen, Confirm)
        assert any("already revoked" in n for n in notifications(app))
    (key,) = [k for k in await service.list_keys("alice") if k.label == "laptop"]
    assert key.revoked_at is not None
    assert (await service.audit_log(since=0))[0].action == "key.revoke"


async def test_a_service_key_is_offered_shown_and_refused_for_an_admin(
    app: AdminApp, seeded: Seeded, service: AdminService
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("u")
        await settle(pilot)
        for user in ("root", "alice"):
            select_row(app, user)
            await pilot.press("c")
            await settle(pilot)
            modal = app.screen
            assert isinstance(modal, CreateKeyModal)
            await pilot.press(*"webui", "tab", "tab", "space")  # label, expiry, the checkbox
            assert modal.query_one("#acts", Checkbox).value is True
            await pilot.click("#submit")
            await settle(pilot)
            if user == "root":  # an admin's key may not act for anyone: said, nothing made
                assert any("may not be one" in n for n in notifications(app))
                continue
            assert isinstance(app.screen, KeyShownModal)
            await pilot.press("escape")
            await settle(pilot)
        await pilot.press("k")
        await settle(pilot)
        (record,) = [k for k in await service.list_keys() if k.label == "webui"]
        assert record.user_name == "alice" and record.acts_for_users
        select_row(app, str(record.id))
        await settle(pilot)
        row = table_rows(app)[column(app, 0).index(str(record.id))]
        assert row[6] == "service"
        assert "a service key: acts for the users it names" in text_of(app, "#key-detail")
        laptop = str(seeded.key_ids["laptop"])
        assert table_rows(app)[column(app, 0).index(laptop)][6] == "active"
    assert (await service.audit_log(since=0))[0].detail == f"key_id={record.id} acts_for_users"
