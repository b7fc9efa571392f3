"""The dashboard under a fixed clock: per-minute traffic, who and what, failures, upstreams."""

from __future__ import annotations

import asyncio

from admin_tui import AdminApp, create_app
from authproxy.admin.service import AdminService
from authproxy.store import open_store

from .conftest import settle
from .helpers import table_rows, text_of
from .seed import FakeClock, Seeded, traffic


async def test_numbers_of_the_last_minute_and_hour(app: AdminApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        stats = text_of(app, "#stats")
        assert "Last minute  4 requests · 1.8k tokens" in stats
        assert "as of 2025-03-14 09:26" in stats
        assert "Last hour    127 requests · 25k tokens · 1 error · 3 auth failures" in stats
        assert table_rows(app, "by-user") == [
            ["alice", "120", "19k"],
            ["bob", "6", "4.5k"],
            ["root", "1", "1k"],
        ]
        assert table_rows(app, "by-model") == [["tiny", "126", "24k"], ["big", "1", "1k"]]
        assert "peak 1.8k tokens/min" in text_of(app, "#tokens-chart Label")
        assert text_of(app, "#upstreams") == "Upstreams  ○ local down (connection refused)  "
        assert text_of(app, "#gateway") == "Gateway    ○ not running at 127.0.0.1:9"
        assert text_of(app, "#queue") == "Queue      unknown without the gateway"


async def test_who_waits_in_the_gateways_fair_queue(busy_app: AdminApp) -> None:
    async with busy_app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        line = text_of(busy_app, "#queue")
    assert line == "Queue      2/2 slots busy · waiting: alice 10, bob 1 · 1 refused"


async def test_refreshes_on_its_own(
    service: AdminService, clock: FakeClock, seeded: Seeded
) -> None:
    app = create_app(service, clock=clock, refresh_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "127 requests" in text_of(app, "#stats")
        store = await open_store(seeded.config.db_path)
        try:
            row = traffic(seeded.user_ids)[-1]
            await store.insert_usage([row._replace(request_id="one-more")])
        finally:
            await store.close()
        for _ in range(50):
            await asyncio.sleep(0.05)
            await settle(pilot)
            if "128 requests" in text_of(app, "#stats"):
                break
        assert "Last hour    128 requests" in text_of(app, "#stats")
