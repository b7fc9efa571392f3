"""The events-per-key window behind the rpm quota, the auth throttle and the login limiter."""

from __future__ import annotations

from authproxy.limits.sliding_window import Hit, SlidingWindow


def test_new_hits_are_each_counted_and_age_out() -> None:
    window = SlidingWindow[int](window=60.0)
    for at in (1.0, 2.0, 3.0):
        window.add_new(7, Hit(at))
    assert len(window.recent(7, 10.0)) == 3
    assert window.retry_after(7, 3, 10.0) == 51.0  # the oldest leaves at 61
    assert window.retry_after(7, 4, 10.0) == 0.0
    assert len(window.recent(7, 62.0)) == 1  # 1.0 and 2.0 are a minute old


def test_a_hit_added_again_counts_once_and_can_be_taken_back() -> None:
    window = SlidingWindow[str](window=60.0)
    hit = Hit(5.0)
    window.add("ann", hit)
    window.add_new("ann", Hit(6.0))
    window.add("ann", hit)  # the login limiter counts a failed check again: still one
    assert len(window.recent("ann", 10.0)) == 2
    window.remove("ann", hit)
    assert [h.at for h in window.recent("ann", 10.0)] == [6.0]
