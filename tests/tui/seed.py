"""A store with a month of history, the same every run: the TUI tests' fixture data.

Everything is created through the admin service (as the CLI and the TUI do) under a fixed
clock, with predictable keys, so screenshots do not change between runs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.factories import usage_row

from authproxy.admin import service as admin_module
from authproxy.cli.commands import admin_service
from authproxy.config.schema import Config
from authproxy.store import Store, open_store, sqlite_login, sqlite_users
from authproxy.store.records import AuditEntry, UsageRow

NOW = datetime(2025, 3, 14, 9, 26, tzinfo=UTC).timestamp()
DAY = 86400.0


@dataclass
class FakeClock:
    t: float = NOW

    def __call__(self) -> float:
        return self.t


def freeze(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    """Make the service and the store stamp records with ``clock``'s time."""
    monkeypatch.setattr(admin_module, "now", clock)
    monkeypatch.setattr(sqlite_users, "now", clock)
    monkeypatch.setattr(sqlite_login, "now", clock)


def predictable_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    letters: Iterator[str] = itertools.cycle("ABCDEFGHJKMNPQRSTUVWXYZ")

    def generate() -> str:
        return "sk-" + next(letters) * 6 + "x" * 37

    monkeypatch.setattr(admin_module, "generate_key", generate)


def tui_config(data_dir: Path, upstream_url: str) -> dict[str, Any]:
    return {
        "listen": {"host": "127.0.0.1", "port": 9},  # no gateway: the dashboard says so
        "data_dir": str(data_dir),
        "upstreams": [{"name": "local", "url": upstream_url, "models": ["tiny", "big"]}],
        "model_aliases": {"fast": "tiny"},
        "roles": {
            "admin": {"models": ["*"]},
            "user": {
                "models": ["*"],
                "requests_per_minute": 60,
                "max_concurrent": 4,
                "tokens_per_day": 200_000,
                "tokens_per_month": 4_000_000,
            },
            "restricted": {"models": ["tiny"], "tokens_per_day": 20_000},
        },
        "log_level": "warning",
    }


@dataclass
class Seeded:
    config: Config
    user_ids: dict[str, int] = field(default_factory=dict)
    key_ids: dict[str, int] = field(default_factory=dict)  # label -> id
    session_ids: dict[str, int] = field(default_factory=dict)  # label -> id


def _usage(
    ts: float, user_id: int, model: str, prompt: int, completion: int, status: int = 200
) -> UsageRow:
    return usage_row(
        ts=ts,
        request_id=f"req-{ts:.0f}-{user_id}-{model}",
        user_id=user_id,
        model=model,
        upstream="local",
        status=status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        duration_ms=120.0,
        ttft_ms=30.0,
        stream=True,
    )


def traffic(ids: dict[str, int]) -> list[UsageRow]:
    """The last hour, minute by minute, plus some of yesterday (this month, not today)."""
    rows = []
    for minute in range(60):
        start = NOW - 3600 + minute * 60 + 5
        for n in range((minute * 7) % 5):
            rows.append(_usage(start + n, ids["alice"], "tiny", 40 + minute, 3 * minute))
        if minute % 10 == 0:
            status = 502 if minute == 30 else 200
            rows.append(_usage(start + 30, ids["bob"], "tiny", 500, 250, status))
    rows.append(_usage(NOW - DAY, ids["alice"], "big", 20_000, 5_000))
    rows.append(_usage(NOW - 50, ids["root"], "big", 900, 100))
    return rows


async def seed(config: Config, clock: FakeClock) -> Seeded:
    out = Seeded(config)
    async with admin_service(config, create=True) as admin:
        admin.actor, admin.source = "seed", "local"
        for name, role, email, age in (
            ("root", "admin", None, 30),
            ("alice", "user", "alice@example.com", 20),
            ("bob", "restricted", None, 10),
            ("dave", "user", "dave@example.com", 5),
        ):
            clock.t = NOW - age * DAY
            out.user_ids[name] = (await admin.add_user(name, role=role, email=email)).id
        for user, label, age, expires in (
            ("root", "ops", 30, None),
            ("alice", "laptop", 19, 30 * DAY),
            ("alice", "old", 19, None),
            ("bob", "ci", 9, 8 * DAY),
        ):
            clock.t = NOW - age * DAY
            new = await admin.create_key(user, label=label, expires_in=expires)
            out.key_ids[label] = new.record.id
        clock.t = NOW - 3 * DAY
        await admin.revoke_key(out.key_ids["old"])
        await admin.set_disabled("dave", True)
        clock.t = NOW - DAY
        await admin.set_quota("alice", tokens_per_day=50_000, requests_per_minute=30)
        clock.t = NOW - 7200
        await admin.set_model_enabled("big", False)
    store = await open_store(config.store_location)
    try:
        await store.touch_keys({out.key_ids["laptop"]: NOW - 120, out.key_ids["ops"]: NOW - 50})
        failures = [
            AuditEntry(
                NOW - s, "anonymous", "auth.failed", None, "reason=unknown_key", "203.0.113.7"
            )
            for s in (400, 300, 200)
        ]
        await store.insert_usage(traffic(out.user_ids), failures)
        await _sessions(store, clock, out)
    finally:
        await store.close()
    clock.t = NOW
    return out


SESSIONS = (  # label, user, via, signed in (s ago), last seen (s ago), from, user agent
    ("alice-laptop", "alice", "oidc", 2 * DAY, 300, "198.51.100.23", "Firefox/136.0 (X11; Linux)"),
    ("alice-phone", "alice", "password", 3 * 3600, 3600, "203.0.113.50", "Safari/18.3 (iPhone)"),
    ("root", "root", "password", 1200, 60, "127.0.0.1", None),
)


async def _sessions(store: Store, clock: FakeClock, out: Seeded) -> None:
    """Browser sessions as a login makes them (within the idle timeout: listing purges idle)."""
    absolute = out.config.sessions.absolute_timeout
    for label, user, via, age, seen, source, agent in SESSIONS:
        clock.t = NOW - age
        out.session_ids[label] = await store.create_session(
            id_hash=hashlib.sha256(label.encode()).digest(),
            user_id=out.user_ids[user],
            via=via,
            expires_at=clock.t + absolute,
            source=source,
            user_agent=agent,
        )
        await store.touch_session(out.session_ids[label], NOW - seen)
