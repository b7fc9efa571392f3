"""The dashboard report: per-minute slices ending at a given time, busiest users and models."""

from __future__ import annotations

from pathlib import Path

from support.factories import usage_row

from authproxy.admin.reports import build_dashboard
from authproxy.store import open_store
from authproxy.store.records import AuditEntry, UsageRow

AT = 1_700_000_000.0


def _row(ts: float, user_id: int, model: str, tokens: int, status: int = 200) -> UsageRow:
    return usage_row(
        ts=ts,
        request_id=f"r{ts}{model}",
        user_id=user_id,
        model=model,
        upstream="local",
        status=status,
        prompt_tokens=tokens,
    )


async def test_dashboard_slices_tallies_and_auth_failures(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "a.db")
    try:
        alice = await store.create_user(name="alice", role="user", email=None)
        bob = await store.create_user(name="bob", role="user", email=None)
        await store.insert_usage(
            [
                _row(AT - 3601, alice.id, "tiny", 1000),  # outside the hour
                _row(AT - 3599, alice.id, "tiny", 10),  # first slice
                _row(AT - 30, bob.id, "big", 50),  # last slice
                _row(AT - 10, alice.id, "big", 5, status=502),
            ],
            [
                AuditEntry(AT - 100, "anonymous", "auth.failed", None, None, "10.0.0.1"),
                AuditEntry(AT - 90, "gateway", "auth.blocked", "10.0.0.1", None, "10.0.0.1"),
                AuditEntry(AT - 7200, "anonymous", "auth.failed", None, None, "10.0.0.1"),
            ],
        )
        board = await build_dashboard(store, at=AT)
        assert len(board.timeline) == 60 and board.window == 3600
        assert board.timeline[-1].start == AT - 60
        assert (board.timeline[0].requests, board.timeline[-1].requests) == (1, 2)
        assert (board.requests, board.tokens, board.errors) == (3, 65, 1)
        assert board.last is not None and board.last.tokens == 55
        assert [(t.name, t.requests, t.tokens) for t in board.per_user] == [
            ("bob", 1, 50),
            ("alice", 2, 15),
        ]
        assert [(t.name, t.tokens) for t in board.per_model] == [("big", 55), ("tiny", 10)]
        assert (board.auth_failures, board.auth_blocks) == (1, 1)
    finally:
        await store.close()
