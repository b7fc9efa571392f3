"""The store contract for what was used (usage rows, summaries, the timeline, the audit log),
on both backends (see conftest.py)."""

from __future__ import annotations

from support.factories import usage_row

from authproxy.store import Store
from authproxy.store.records import AuditEntry, UsageRow, UsageSummary
from authproxy.store.sqlite_usage import ROWS_PER_INSERT


def _row(
    ts: float,
    user_id: int | None,
    status: int = 200,
    tokens: tuple[int, int] = (3, 4),
    model: str | None = "m",
) -> UsageRow:
    return usage_row(
        ts=ts,
        request_id=f"r{ts}",
        user_id=user_id,
        model=model,
        status=status,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
    )


async def test_usage_rows_and_summary(store: Store) -> None:
    user = await store.create_user(name="u", role="user", email=None)
    key = await store.create_key(
        user_id=user.id, key_hash=b"h" * 32, prefix="p", label=None, expires_at=None
    )
    rows = [
        usage_row(
            ts=100.0 + i,
            request_id=f"r{i}",
            user_id=user.id,
            key_id=key.id,
            prompt_tokens=3,
            completion_tokens=4,
            duration_ms=1.25,
            ttft_ms=0.5 if i % 3 else None,
            stream=bool(i % 2),
        )
        for i in range(10)
    ]
    await store.insert_usage(rows)
    assert await store.usage_rows() == rows
    assert await store.usage_rows(since=108.0) == rows[8:]
    (summary,) = await store.usage_summary(since=105.0)
    assert (summary.user_name, summary.requests, summary.prompt_tokens) == ("u", 5, 15)
    assert await store.usage_summary(since=105.0, user_id=user.id + 1) == []


async def test_a_batch_larger_than_one_statement_is_written_whole_and_in_order(
    store: Store,
) -> None:
    # SQLite writes ROWS_PER_INSERT rows per statement: cross two of them, and end mid-way.
    user = await store.create_user(name="u", role="user", email=None)
    rows = [
        usage_row(
            ts=1_700_000_000.123456 + i / 7,
            request_id=f"r{i}",
            user_id=user.id if i % 2 else None,
            model=None if i % 5 == 0 else f"m{i % 3}",
            prompt_tokens=i,
            completion_tokens=2 * i,
            duration_ms=i / 3,
            ttft_ms=None if i % 4 else i / 9,
            stream=bool(i % 2),
        )
        for i in range(2 * ROWS_PER_INSERT + 7)
    ]
    await store.insert_usage(rows)
    assert await store.usage_rows() == rows


async def test_summary_groups_per_user_and_model_in_a_fixed_order(store: Store) -> None:
    bob = await store.create_user(name="bob", role="user", email=None)
    ann = await store.create_user(name="Ann", role="user", email=None)
    await store.insert_usage(
        [
            _row(1.0, bob.id, model="tiny"),
            _row(2.0, bob.id, model=None),  # no model (e.g. a rejected body)
            _row(3.0, ann.id, model="tiny", tokens=(10, 0)),
            _row(4.0, None, model="big"),  # a deleted user
            _row(5.0, bob.id, model="tiny"),
        ]
    )
    assert await store.usage_summary(since=0.0) == [
        UsageSummary("(deleted)", "big", 1, 3, 4),
        UsageSummary("Ann", "tiny", 1, 10, 0),
        UsageSummary("bob", None, 1, 3, 4),
        UsageSummary("bob", "tiny", 2, 6, 8),
    ]
    assert await store.usage_summary(since=0.0, user_id=ann.id) == [
        UsageSummary("Ann", "tiny", 1, 10, 0)
    ]


async def test_token_totals_per_user_since(store: Store) -> None:
    a = await store.create_user(name="a", role="user", email=None)
    b = await store.create_user(name="b", role="user", email=None)
    big = 3_000_000_000  # more than 32 bits in one sum
    await store.insert_usage(
        [
            _row(1.0, a.id, tokens=(100, 100)),
            _row(2.0, a.id, tokens=(big, 0)),
            _row(2.5, b.id, tokens=(big, big)),
            _row(3.0, None),
        ]
    )
    assert await store.token_totals_since(1.5) == {a.id: big, b.id: 2 * big}
    assert await store.token_totals_since(10.0) == {}


async def test_usage_timeline_has_every_slice_and_counts_errors(store: Store) -> None:
    user = await store.create_user(name="u", role="user", email=None)
    await store.insert_usage(
        [
            _row(999.0, user.id),  # before the window
            _row(1000.0, user.id),  # first slice, inclusive start
            _row(1059.9, user.id, status=429, tokens=(0, 0)),
            _row(1120.0, None, tokens=(10, 20)),  # third slice; a deleted user still counts
            _row(1180.0, user.id),  # == until: outside
        ]
    )
    buckets = await store.usage_timeline(since=1000.0, until=1180.0, width=60.0)
    assert [b.start for b in buckets] == [1000.0, 1060.0, 1120.0]
    assert [(b.requests, b.tokens, b.errors) for b in buckets] == [
        (2, 7, 1),
        (0, 0, 0),
        (1, 30, 0),
    ]
    assert await store.usage_timeline(since=10.0, until=10.0, width=60.0) == []
    assert await store.usage_timeline(since=10.0, until=20.0, width=0.0) == []
    # A window that does not divide into whole slices: the last slice is partial.
    partial = await store.usage_timeline(since=1000.0, until=1150.0, width=60.0)
    assert [(b.start, b.requests) for b in partial] == [(1000.0, 2), (1060.0, 0), (1120.0, 1)]


async def test_audit_entries_newest_first_and_counts_per_action(store: Store) -> None:
    entries = [
        AuditEntry(1.0, "a", "auth.failed", None, None, "10.0.0.1"),
        AuditEntry(5.0, "a", "auth.failed", "k", "bad key", None),
        AuditEntry(6.0, "cli:root", "user.add", "bob", None, "local"),
    ]
    await store.add_audit(entries[0])
    await store.insert_usage([], entries[1:])
    assert await store.audit_counts(since=2.0) == {"auth.failed": 1, "user.add": 1}
    assert await store.list_audit() == entries[::-1]
    assert await store.list_audit(since=2.0, limit=1) == [entries[2]]


async def test_usage_and_audit_of_one_batch_are_written_together(store: Store) -> None:
    entry = AuditEntry(7.0, "gateway", "auth.blocked", None, None, "10.0.0.2")
    await store.insert_usage([_row(7.0, None)], [entry])
    await store.insert_usage([], [])
    assert len(await store.usage_rows()) == 1
    assert await store.list_audit() == [entry]
