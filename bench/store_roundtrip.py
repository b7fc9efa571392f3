"""One round trip of the store's request-path queries: PostgreSQL against SQLite, same run.

Run from the repository root::

    python bench/store_roundtrip.py             # 3000 calls per query and backend
    python bench/store_roundtrip.py --calls 500 # a quick look

The queries a request can wait on: ``find_session`` (every browser request), ``touch_session``
(a browser request, at most once a minute per session), ``auth_epoch`` (the change poll, and an
unknown key), ``quota_admit`` (an API request of a user with a limit, when quotas are kept in the
database: PostgreSQL, or several workers on SQLite; one round trip, the lease settled again
untimed after each). Usage rows (``insert_usage``, one row per batch here) and quota settles
(``quota_settle``, one per batch here) are written off the request path but shown too. API keys
are checked in memory and never wait on either database.

PostgreSQL is a throwaway cluster on 127.0.0.1 (tests/pg, Debian's server binaries; run as root
it belongs to the ``postgres`` user) with its default durability (fsync, synchronous commit),
over TCP with a password, as a gateway would reach a database on the same machine; SQLite is a
WAL file in a temporary directory, as the gateway opens it (synchronous=NORMAL). The two backends
alternate in rounds, so drift on the machine hits both alike. It prints per-call medians and
means and the PostgreSQL / SQLite ratio; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pg.cluster import PostgresCluster
from support.factories import usage_row

from authproxy.clock import now
from authproxy.store import Store, open_store
from authproxy.store.quota_records import QuotaAsk, QuotaSettle, Window

ROUNDS = 10
SESSION = hashlib.sha256(b"bench session").digest()
Call = Callable[[], Awaitable[object]]
DAY, MONTH = Window(0.0, 4e9), Window(0.0, 4e9)


class Then:
    """What a call hands back to be done untimed after it (settling the lease it took)."""

    def __init__(self, follow: Callable[[], Awaitable[object]]) -> None:
        self.follow = follow


async def _seed(store: Store) -> tuple[int, int]:
    user = await store.create_user(name="alice", role="user", email=None)
    session_id = await store.create_session(
        id_hash=SESSION, user_id=user.id, via="password", expires_at=now() + 86400,
        source="127.0.0.1", user_agent="bench",
    )  # fmt: skip
    return user.id, session_id


def _calls(store: Store, user_id: int, session_id: int) -> dict[str, Call]:
    row = usage_row(
        ts=now(), request_id="bench", user_id=user_id, model="tiny", upstream="local",
        prompt_tokens=20, completion_tokens=8, duration_ms=12.5, ttft_ms=3.0,
    )  # fmt: skip
    leases = itertools.count(1)

    def ask() -> QuotaAsk:
        t = now()
        return QuotaAsk(
            lease_id=next(leases), user_id=user_id, now=t, expires_at=t + 30,
            requests_per_minute=None, max_concurrent=1000, tokens_per_day=10**12,
            tokens_per_month=10**13, day=DAY, month=MONTH, prompt=100, outputs=1, limit=256,
            clamp=True,
        )  # fmt: skip

    def settle(a: QuotaAsk) -> QuotaSettle:
        return QuotaSettle(lease_id=a.lease_id, user_id=user_id, admitted_at=a.now, tokens=40,
                           now=now(), day=DAY, month=MONTH)  # fmt: skip

    async def admit() -> Then:
        a = ask()
        await store.quota_admit(a)
        return Then(lambda: store.quota_settle([settle(a)]))

    return {
        "find_session": lambda: store.find_session(SESSION),
        "touch_session": lambda: store.touch_session(session_id, now()),
        "auth_epoch": store.auth_epoch,
        "quota_admit": admit,
        "insert_usage (1 row)": lambda: store.insert_usage([row]),
        "quota_settle (1)": _settle_timed(store, ask, settle),
    }


def _settle_timed(
    store: Store, ask: Callable[[], QuotaAsk], settle: Callable[[QuotaAsk], QuotaSettle]
) -> Call:
    """A settle, timed, of a lease admitted untimed after the call before (a warm-up call
    makes the first)."""
    pending: list[QuotaAsk] = []

    async def admit_next() -> None:
        a = ask()
        await store.quota_admit(a)
        pending.append(a)

    async def run() -> Then:
        if pending:
            await store.quota_settle([settle(pending.pop())])
        return Then(admit_next)

    return run


async def _time(call: Call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        done = await call()
        out.append(time.perf_counter() - t)
        if isinstance(done, Then):
            await done.follow()
    return out


async def measure(sqlite: Store, postgres: Store, calls: int) -> None:
    backends = {"sqlite": sqlite, "postgresql": postgres}
    suites = {name: _calls(s, *await _seed(s)) for name, s in backends.items()}
    samples: dict[tuple[str, str], list[float]] = {}
    for query in suites["sqlite"]:
        for name in backends:  # warm-up: statement caches, the pool, the page cache
            await _time(suites[name][query], 50)
        for r in range(ROUNDS):
            order = list(backends) if r % 2 == 0 else list(backends)[::-1]
            for name in order:
                took = await _time(suites[name][query], max(1, calls // ROUNDS))
                samples.setdefault((query, name), []).extend(took)
    heads = ("sqlite p50", 12), ("pg p50", 10), ("sqlite mean", 13), ("pg mean", 10)
    print(f"{'query':<22}" + "".join(f"{h:>{w}}" for h, w in heads) + f"{'pg/sqlite':>11}")
    for query in suites["sqlite"]:
        lite, pg = samples[(query, "sqlite")], samples[(query, "postgresql")]
        ratio = statistics.median(pg) / statistics.median(lite)
        print(
            f"{query:<22}{_us(statistics.median(lite)):>12}{_us(statistics.median(pg)):>10}"
            f"{_us(statistics.fmean(lite)):>13}{_us(statistics.fmean(pg)):>10}{ratio:>10.1f}x"
        )
    print(f"(microseconds per call; {calls} calls per query and backend, {ROUNDS} rounds)")


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


async def _main(calls: int, cluster: PostgresCluster, tmp: Path) -> None:
    sqlite = await open_store(tmp / "bench.db")
    postgres = await open_store(cluster.create_database("bench"))
    try:
        await measure(sqlite, postgres, calls)
    finally:
        await sqlite.close()
        await postgres.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per query and backend")
    args = parser.parse_args()
    with PostgresCluster(durable=True) as cluster, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_main(args.calls, cluster, Path(tmp)))


if __name__ == "__main__":
    main()
