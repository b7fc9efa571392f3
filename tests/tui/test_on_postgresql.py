"""The admin TUI on `database: postgresql://…`: the same screens over the same seeded data,
the store being a fresh database of the throwaway cluster (tests/pg) instead of SQLite.

The tests imported below run here a second time, with this module's `config` and `clock`."""

from __future__ import annotations

from pathlib import Path

import pytest

from authproxy.config.schema import Config
from authproxy.store import postgres_login, postgres_users

from .conftest import CLOSED_URL
from .seed import FakeClock, freeze, predictable_keys, tui_config
from .test_keys_screen import (
    test_lists_keys_with_expiry_and_status as test_lists_keys_with_expiry_and_status,
)
from .test_keys_screen import test_revoke_asks_first as test_revoke_asks_first
from .test_users_screen import test_add_a_user as test_add_a_user
from .test_users_screen import (
    test_lists_users_with_usage_against_quota as test_lists_users_with_usage_against_quota,
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    freeze(monkeypatch, clock)
    monkeypatch.setattr(postgres_users, "now", clock)
    monkeypatch.setattr(postgres_login, "now", clock)
    predictable_keys(monkeypatch)
    return clock


@pytest.fixture
def config(tmp_path: Path, pg_database: str) -> Config:
    return Config.model_validate(
        {**tui_config(tmp_path / "data", CLOSED_URL), "database": pg_database}
    )


__all__ = [
    "test_add_a_user",
    "test_lists_keys_with_expiry_and_status",
    "test_lists_users_with_usage_against_quota",
    "test_revoke_asks_first",
]
