"""The store contract for the quota ledger (admissions, leases, settles, counters), on both
backends: SQLite runs the rules in Python (``quota_rules.decide``), PostgreSQL in PL/pgSQL, and
every answer here must be the same on both."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
from typing import Any

from support.factories import usage_row

from authproxy.store import Store
from authproxy.store.quota_records import (
    RPM_WINDOW,
    QuotaAnswer,
    QuotaAsk,
    QuotaSettle,
    QuotaState,
    Window,
)
from authproxy.store.quota_rules import decide

from .conftest import Backend

T0 = 1_000_000.0
DAY = Window(T0 - 3600, T0 + 20 * 3600)
MONTH = Window(T0 - 10 * 86400, T0 + 20 * 86400)
_ids = itertools.count(1)


def ask(user_id: int, *, now: float = T0, ttl: float = 30.0, **fields: Any) -> QuotaAsk:
    base = QuotaAsk(
        lease_id=next(_ids), user_id=user_id, now=now, expires_at=now + ttl,
        requests_per_minute=None, max_concurrent=None, tokens_per_day=None,
        tokens_per_month=None, day=DAY, month=MONTH, prompt=10, outputs=1, limit=50,
        clamp=True,
    )  # fmt: skip
    return dataclasses.replace(base, **fields)


def settle(a: QuotaAsk, tokens: int, *, now: float | None = None) -> QuotaSettle:
    return QuotaSettle(
        lease_id=a.lease_id, user_id=a.user_id, admitted_at=a.now, tokens=tokens,
        now=a.now if now is None else now, day=a.day, month=a.month,
    )  # fmt: skip


async def _begun(store: Store, now: float = T0) -> Store:
    await store.quota_begin(shared=True, now=now)
    return store


def _brief(answer: QuotaAnswer) -> tuple[Any, ...]:
    return (answer.refused, answer.limit, answer.reserved, answer.remaining)


async def test_tokens_are_reserved_clamped_then_refused(store: Store) -> None:
    await _begun(store)
    first = ask(7, tokens_per_day=100)
    assert _brief(await store.quota_admit(first)) == (None, 50, 60, 100)
    # 40 left: the output limit is lowered to what remains after the prompt.
    assert _brief(await store.quota_admit(ask(7, tokens_per_day=100))) == (None, 30, 40, 40)
    refused = await store.quota_admit(ask(7, tokens_per_day=100))
    assert _brief(refused) == ("tokens_day", 50, 0, 0)
    assert refused.retry_after == DAY.end - T0
    # The first ends having used 20 of its 60: 40 free again, 20 charged.
    await store.quota_settle([settle(first, 20)])
    answer = await store.quota_admit(ask(7, tokens_per_day=100, limit=5))
    assert _brief(answer) == (None, 5, 15, 40)
    assert (answer.used_day, answer.used_month) == (20, 20)
    assert await store.quota_used(7, day=DAY, month=MONTH) == (20, 20)


async def test_a_prompt_that_does_not_fit_and_no_clamping(store: Store) -> None:
    await _begun(store)
    held = ask(1, tokens_per_month=100, limit=85)
    assert _brief(await store.quota_admit(held)) == (None, 85, 95, 100)
    # 5 left, the prompt alone needs 10: refused for the month, with what is left.
    small = await store.quota_admit(ask(1, tokens_per_month=100, tokens_per_day=1000))
    assert _brief(small) == ("tokens_month", 50, 0, 5)
    assert small.retry_after == MONTH.end - T0
    # Without clamping a request is admitted while anything remains, and may overshoot.
    loose = await store.quota_admit(ask(1, tokens_per_month=100, clamp=False))
    assert _brief(loose) == (None, 50, 60, 5)
    # Several outputs reserve the limit each; embeddings (no output) only the prompt.
    assert _brief(await store.quota_admit(ask(2, tokens_per_day=75, outputs=2))) == (
        None, 32, 74, 75,
    )  # fmt: skip
    assert _brief(await store.quota_admit(ask(3, tokens_per_day=5, outputs=0))) == (
        None, 50, 10, 5,
    )  # fmt: skip


async def test_requests_per_minute_is_a_sliding_minute(store: Store) -> None:
    await _begun(store)
    for offset in (0, 10, 20):
        a = ask(5, now=T0 + offset, requests_per_minute=3)
        assert (await store.quota_admit(a)).refused is None
        await store.quota_settle([settle(a, 1)])  # settled requests still count for a minute
    refused = await store.quota_admit(ask(5, now=T0 + 30, requests_per_minute=3))
    assert (refused.refused, refused.retry_after) == ("rpm", 30.0)  # when the first leaves
    # Lowered to 2: the wait is for the second-newest to leave.
    lowered = await store.quota_admit(ask(5, now=T0 + 30, requests_per_minute=2))
    assert (lowered.refused, lowered.retry_after) == ("rpm", 40.0)
    assert (await store.quota_admit(ask(5, now=T0 + 60.5, requests_per_minute=3))).refused is None
    zero = await store.quota_admit(ask(6, requests_per_minute=0))
    assert (zero.refused, zero.retry_after) == ("rpm", 60.0)


async def test_concurrency_counts_live_leases_until_settled_or_expired(store: Store) -> None:
    await _begun(store)
    a, b = ask(4, max_concurrent=2, ttl=5), ask(4, max_concurrent=2, ttl=50)
    assert (await store.quota_admit(a)).refused is None
    assert (await store.quota_admit(b)).refused is None
    third = await store.quota_admit(ask(4, max_concurrent=2))
    assert (third.refused, third.retry_after) == ("concurrency", 1.0)
    await store.quota_settle([settle(b, 3)])
    assert (await store.quota_admit(ask(4, max_concurrent=2))).refused is None
    assert (await store.quota_admit(ask(4, max_concurrent=2))).refused == "concurrency"
    # `a` was never renewed (its gateway crashed): 5 s on, it no longer holds a slot.
    assert (await store.quota_admit(ask(4, now=T0 + 6, max_concurrent=2))).refused is None


async def test_renewed_leases_keep_holding_their_tokens(store: Store) -> None:
    await _begun(store)
    a = ask(8, tokens_per_day=100, ttl=5)
    await store.quota_admit(a)
    assert await store.quota_renew([a.lease_id, 12345], expires_at=T0 + 100) == 1
    later = await store.quota_admit(ask(8, now=T0 + 50, tokens_per_day=100))
    assert _brief(later) == (None, 30, 40, 40)
    await store.quota_settle([settle(a, 60)])
    assert await store.quota_renew([a.lease_id], expires_at=T0 + 200) == 0  # settled: gone


async def test_a_settle_counts_once_whatever_happened_to_its_lease(store: Store) -> None:
    await _begun(store)
    a = ask(9, tokens_per_day=1000)
    await store.quota_admit(a)
    await store.quota_settle([settle(a, 40)])
    await store.quota_settle([settle(a, 40)])  # a retry after a lost answer
    # Admitted while the database was away (no lease), sent twice: charged once, and it
    # counts for the rate like any request.
    away = ask(9)
    await store.quota_settle([settle(away, 7), settle(ask(10), 0)])
    await store.quota_settle([settle(away, 7)])
    assert await store.quota_used(9, day=DAY, month=MONTH) == (47, 47)
    assert (await store.quota_admit(ask(9, requests_per_minute=2))).refused == "rpm"
    # A lease that expired and was reaped, settled late: still charged, once.
    late = ask(11, ttl=1)
    await store.quota_admit(late)
    await store.quota_reap(now=T0 + 61)
    await store.quota_settle([settle(late, 5, now=T0 + 62)] * 2)
    assert await store.quota_used(11, day=DAY, month=MONTH) == (5, 5)


async def test_tokens_go_to_the_windows_a_request_ended_in(store: Store) -> None:
    await _begun(store)
    a = ask(12)
    await store.quota_admit(a)
    tomorrow = Window(DAY.end, DAY.end + 86400)
    ended = dataclasses.replace(settle(a, 9, now=DAY.end + 1), day=tomorrow)
    await store.quota_settle([ended])
    assert await store.quota_used(12, day=DAY, month=MONTH) == (0, 9)
    assert await store.quota_used(12, day=tomorrow, month=MONTH) == (9, 9)


async def test_reap_forgets_only_what_no_longer_counts(store: Store) -> None:
    await _begun(store)
    old_window = Window(T0 - 10 * 86400, T0 - 9 * 86400)
    done, running, expired = ask(13), ask(13, ttl=500), ask(13, ttl=5)
    for a in (done, running, expired):
        await store.quota_admit(a)
    await store.quota_settle(
        [settle(done, 1), dataclasses.replace(settle(ask(13), 4), day=old_window)]
    )
    await store.quota_reap(now=T0 + 61)
    # The running lease still holds its slot; the done and the expired ones are gone.
    assert (await store.quota_admit(ask(13, now=T0 + 61, max_concurrent=1))).refused == (
        "concurrency"
    )
    assert await store.quota_renew([done.lease_id, expired.lease_id], expires_at=T0 + 900) == 0
    assert await store.quota_used(13, day=old_window, month=MONTH) == (0, 5)


async def test_fifty_admissions_from_two_processes_fit_exactly(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    try:
        await _begun(first)
        asks = [ask(14, tokens_per_day=600) for _ in range(50)]  # 60 each: room for 10
        answers = await asyncio.gather(
            *(s.quota_admit(a) for s, a in zip(itertools.cycle((first, second)), asks))
        )
        admitted = [a for a in answers if a.refused is None]
        assert len(admitted) == 10
        assert {a.reserved for a in admitted} == {60}
    finally:
        await first.close()
        await second.close()


async def test_counters_begin_from_the_usage_table(store: Store) -> None:
    alice = await store.create_user(name="alice", role="user", email=None)
    rows = [
        usage_row(ts=DAY.start - 5, request_id="a", user_id=alice.id, prompt_tokens=100),
        usage_row(ts=T0 - 10, request_id="b", user_id=alice.id, prompt_tokens=3),
        usage_row(ts=T0 - 5, request_id="c", user_id=alice.id, completion_tokens=4),
    ]
    await store.insert_usage(rows)
    await store.quota_begin(shared=True, now=T0)
    assert await store.quota_used(alice.id, day=DAY, month=MONTH) == (7, 107)
    answer = await store.quota_admit(ask(alice.id, tokens_per_day=100))
    assert (answer.used_day, answer.used_month, answer.remaining) == (7, 107, 93)
    # Begun once: a second replica starting changes nothing; nothing is added twice.
    await store.quota_begin(shared=True, now=T0 + 5)
    assert await store.quota_used(alice.id, day=DAY, month=MONTH) == (7, 107)
    # A gateway counting alone (one process on SQLite) makes them stale; the next shared one
    # begins them again from everything in the usage table.
    await store.quota_begin(shared=False, now=T0 + 10)
    await store.insert_usage([usage_row(ts=T0 + 11, request_id="d", user_id=alice.id,
                                        prompt_tokens=50)])  # fmt: skip
    await store.quota_begin(shared=True, now=T0 + 20)
    assert await store.quota_used(alice.id, day=DAY, month=MONTH) == (57, 157)


class _Model:
    """The ledger's meaning in a few lines of Python: the answers every backend must give."""

    def __init__(self) -> None:
        self.leases: dict[int, list[Any]] = {}  # id -> [user, admitted, expires, reserved, done]
        self.used: dict[tuple[int, Window], int] = {}

    def admit(self, a: QuotaAsk) -> QuotaAnswer:
        mine = [v for v in self.leases.values() if v[0] == a.user_id]
        recent = sorted((v[1] for v in mine if v[1] > a.now - RPM_WINDOW), reverse=True)
        rpm = a.requests_per_minute
        wait = 0.0
        if rpm is not None and len(recent) >= rpm:
            wait = recent[rpm - 1] + RPM_WINDOW - a.now if rpm > 0 else RPM_WINDOW
        live = [v for v in mine if not v[4] and v[2] > a.now]
        state = QuotaState(
            recent=len(recent), rpm_wait=wait, live=len(live), held=sum(v[3] for v in live),
            used_day=self.used.get((a.user_id, a.day), 0),
            used_month=self.used.get((a.user_id, a.month), 0),
        )  # fmt: skip
        answer = decide(a, state)
        if answer.refused is None:
            self.leases[a.lease_id] = [a.user_id, a.now, a.expires_at, answer.reserved, False]
        return answer

    def settle(self, s: QuotaSettle) -> None:
        lease = self.leases.get(s.lease_id)
        if lease is not None and lease[4]:
            return
        self.leases[s.lease_id] = [s.user_id, s.admitted_at, s.now, 0, True]
        for window in (s.day, s.month):
            self.used[s.user_id, window] = self.used.get((s.user_id, window), 0) + s.tokens


async def test_random_traffic_gets_the_answers_of_the_rules(store: Store) -> None:
    """PostgreSQL's PL/pgSQL against ``quota_rules.decide`` (SQLite runs that itself)."""
    await _begun(store)
    rng = random.Random(12)
    model, t = _Model(), T0
    admitted: list[QuotaAsk] = []

    def limit(low: int, high: int) -> int | None:
        return rng.choice([None, rng.randint(low, high)])

    carried: list[QuotaSettle] = []  # settles that ride along with the next admission
    for _ in range(300):
        t += rng.choice([0.0, 0.5, 3.0, 17.0])
        if admitted and rng.random() < 0.4:
            done = admitted.pop(rng.randrange(len(admitted)))
            s = settle(done, rng.randint(0, 80), now=t)
            if rng.random() < 0.5:
                carried.append(s)
            else:
                await store.quota_settle([s])
                model.settle(s)
            continue
        a = ask(
            rng.randint(1, 3), now=t, ttl=rng.choice([5.0, 60.0]),
            requests_per_minute=limit(0, 6), max_concurrent=limit(0, 4),
            tokens_per_day=limit(50, 400), tokens_per_month=limit(100, 800),
            prompt=rng.randint(1, 60), outputs=rng.randint(0, 3), limit=rng.randint(1, 90),
            clamp=rng.random() < 0.8,
        )  # fmt: skip
        along = [c for c in carried if c.user_id == a.user_id]
        carried = [c for c in carried if c.user_id != a.user_id]
        for c in along:
            model.settle(c)
        got, want = await store.quota_admit(a, along), model.admit(a)
        assert dataclasses.replace(got, retry_after=0.0) == dataclasses.replace(
            want, retry_after=0.0
        )
        assert abs(got.retry_after - want.retry_after) < 1e-6, (got, want)
        if got.refused is None:
            admitted.append(a)


async def test_an_admission_settles_what_it_carries_first(store: Store) -> None:
    await _begun(store)
    first = ask(15, max_concurrent=1, tokens_per_day=200)
    assert (await store.quota_admit(first)).refused is None
    assert (await store.quota_admit(ask(15, max_concurrent=1))).refused == "concurrency"
    # The first ended; its settle rides along with the next admission: one step, in order.
    second = await store.quota_admit(
        ask(15, max_concurrent=1, tokens_per_day=200), [settle(first, 70)]
    )
    assert (second.refused, second.used_day, second.remaining) == (None, 70, 130)
    await store.quota_settle([settle(first, 70)])  # sent again: still counted once
    assert await store.quota_used(15, day=DAY, month=MONTH) == (70, 70)
