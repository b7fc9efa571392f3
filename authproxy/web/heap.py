"""The garbage collector set for serving: started-up objects out of its way, and no young
collection for the objects that requests in flight hold for a moment.

Measured under bench/overhead.py's c64 plain load, every collection timed with
``gc.callbacks``: with Python's defaults the gateway spent some 40-50 µs of every request in the
cyclic collector. Two causes, both fixed here, once, before the gateway serves:

* a full collection walks every object alive, and after start-up that is some 68,000 of them
  (modules, classes, functions, the config) that live as long as the process: each full
  collection took 30-40 ms. ``gc.freeze()`` moves them to a generation that is never scanned;
* a young collection runs each time 700 more container objects were made than freed, and 64
  requests in flight hold more than that between them: young collections ran hundreds of
  times a second, each promoting the requests' live objects towards the older generations.
  At 10,000 they run only when garbage really piles up (rarely: most of it is freed by
  reference counting). What waits for it is bounded: ~10,000 container objects at most.

Reference cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_heap"]

YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Call once, after start-up and before serving (``authproxy serve``, the bench's floor)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
