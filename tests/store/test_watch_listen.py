"""StoreWatch on PostgreSQL: a notification wakes it long before its poll would, and the
listening connection is made again after it was cut (the poll is slowed down here so that only
LISTEN/NOTIFY can explain a change seen within a second)."""

from __future__ import annotations

import asyncio

import asyncpg

from authproxy.store.postgres import open_postgres
from authproxy.store.watch import StoreWatch

SLOW_POLL = 30.0
WITHIN = 1.0


async def _listening(watch: StoreWatch, want: bool) -> None:
    for _ in range(500):
        if watch.listening is want:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"listening is not {want} after 10 s")


async def test_a_notification_wakes_the_watch_and_survives_a_cut_connection(
    pg_database: str,
) -> None:
    mine, theirs = await open_postgres(pg_database), await open_postgres(pg_database)
    reloaded = asyncio.Event()

    async def reload() -> None:
        reloaded.set()

    watch = StoreWatch(store=mine, feed=mine, interval=SLOW_POLL)
    watch.subscribe(reload)
    try:
        async with watch.running():
            await _listening(watch, True)
            reloaded.clear()
            await theirs.create_user(name="bob", role="user", email=None)
            await asyncio.wait_for(reloaded.wait(), WITHIN)

            # The server ends the listening connection (a restart, a proxy timing it out).
            con = await asyncpg.connect(pg_database)
            try:
                cut = await con.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
            finally:
                await con.close()
            assert cut == 1
            await _listening(watch, False)
            await _listening(watch, True)
            reloaded.clear()
            await theirs.set_user_role("bob", "admin")
            await asyncio.wait_for(reloaded.wait(), WITHIN)
            assert watch.healthy
    finally:
        await mine.close()
        await theirs.close()
