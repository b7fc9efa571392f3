"""The queue of quota settles: bounded (the oldest dropped, counted), taken per user by an
admission or whole by the settler, and put back when a write fails."""

from __future__ import annotations

import asyncio

from authproxy.limits.settle_queue import SettleQueue
from authproxy.store.quota_records import QuotaSettle, Window

W = Window(0.0, 1.0)


def _settle(lease: int, user: int) -> QuotaSettle:
    """Lease ``lease`` of ``user``, ended at ``lease`` seconds."""
    return QuotaSettle(lease_id=lease, user_id=user, admitted_at=0.0, tokens=1, now=lease,
                       day=W, month=W)  # fmt: skip


async def test_past_its_limit_the_oldest_go_and_are_counted() -> None:
    queue = SettleQueue(limit=3)
    queue.put(_settle(1, 7), _settle(2, 8), _settle(3, 7), _settle(4, 9), _settle(5, 8))
    assert (len(queue), queue.dropped) == (3, 2)
    assert [s.lease_id for s in queue.take_all()] == [3, 5, 4]  # 1 and 2 were the oldest


async def test_an_admission_takes_its_users_and_the_settler_the_rest() -> None:
    queue = SettleQueue()
    queue.put(_settle(1, 7), _settle(2, 8), _settle(3, 7))
    assert [s.lease_id for s in queue.take(7)] == [1, 3]
    assert queue.take(7) == [] and len(queue) == 1
    batch = queue.take_all()
    assert queue.writing(8) and queue.waiting(8) and len(queue) == 0
    waiter = asyncio.create_task(queue.until_written(8, queued_too=True))
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.written(batch, ok=False)  # the write failed: back in the queue, still waiting
    assert not queue.writing(8) and len(queue) == 1
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.written(queue.take_all(), ok=True)
    await asyncio.wait_for(waiter, 1)
    assert not queue.waiting(8)
