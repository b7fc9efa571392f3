"""The stream deadline that moves with every chunk (proxy/idle_deadline.py), on a real loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from authproxy.proxy.idle_deadline import IdleDeadline


async def test_chunks_in_time_keep_a_stream_going_past_idle() -> None:
    started = time.monotonic()
    async with IdleDeadline(first=0.2, idle=0.15) as deadline:
        for _ in range(8):  # 0.4 s in all, never 0.15 s without a chunk
            await asyncio.sleep(0.05)
            deadline.moved()
    assert time.monotonic() - started >= 0.4


async def _chunks_then_silence(*, first: float, idle: float, chunks: int) -> None:
    async with IdleDeadline(first=first, idle=idle) as deadline:
        for _ in range(chunks):
            await asyncio.sleep(0.05)
            deadline.moved()
        await asyncio.sleep(5)


async def test_silence_after_the_last_chunk_ends_it_after_idle() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await _chunks_then_silence(first=0.2, idle=0.15, chunks=4)
    assert 0.3 <= time.monotonic() - started < 1.0  # 0.2 s of chunks, then 0.15 s of silence


async def test_idle_shorter_than_first_applies_from_the_first_chunk() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await _chunks_then_silence(first=30, idle=0.1, chunks=1)
    assert time.monotonic() - started < 1.0


async def test_nothing_at_all_ends_it_after_first() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with IdleDeadline(first=0.1, idle=30):
            await asyncio.sleep(5)
    assert 0.09 <= time.monotonic() - started < 1.0


async def test_a_body_that_ends_leaves_no_timer_behind() -> None:
    async with IdleDeadline(first=0.05, idle=0.05) as deadline:
        deadline.moved()
    await asyncio.sleep(0.15)  # a timer left armed would cancel this task now
