"""The collector settings `authproxy serve` applies before serving (web/heap.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from authproxy.web.heap import YOUNG_THRESHOLD


def test_serving_process_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    # In a process of its own: a frozen heap stays frozen for the rest of that process.
    code = (
        "import gc, json, authproxy.serve\n"
        "before = gc.get_threshold()\n"
        "authproxy.serve.settle_heap()\n"
        "print(json.dumps([gc.get_freeze_count(), before, gc.get_threshold()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    frozen, before, after = json.loads(out)
    assert frozen > 10_000  # the gateway's modules, classes and functions
    assert after == [YOUNG_THRESHOLD, before[1], before[2]]
