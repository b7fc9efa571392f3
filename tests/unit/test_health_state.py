"""The health state machine: thresholds, first-probe decision, passive ejection."""

from __future__ import annotations

from authproxy.upstreams.health import HealthState

UP, DOWN = 2, 3  # healthy_after, unhealthy_after


def ok(state: HealthState) -> bool:
    return state.probe_succeeded(healthy_after=UP)


def bad(state: HealthState) -> bool:
    return state.probe_failed("refused", unhealthy_after=DOWN)


def test_unknown_is_routable_and_the_first_probe_decides() -> None:
    state = HealthState()
    assert state.healthy is None and state.routable
    assert bad(state) and state.healthy is False and state.reason == "refused"
    fresh = HealthState()
    assert ok(fresh) and fresh.healthy is True and fresh.reason is None


def test_goes_out_only_after_unhealthy_after_failures_in_a_row() -> None:
    state = HealthState()
    ok(state)
    assert not bad(state) and not bad(state)
    assert state.routable
    assert bad(state)
    assert not state.routable and state.failures == DOWN


def test_a_good_probe_between_failures_starts_the_count_again() -> None:
    state = HealthState()
    ok(state)
    for _ in range(5):
        bad(state)
        bad(state)
        ok(state)
    assert state.healthy is True


def test_comes_back_only_after_healthy_after_good_probes() -> None:
    state = HealthState()
    ok(state)
    for _ in range(DOWN):
        bad(state)
    assert not ok(state) and not state.routable
    assert ok(state) and state.routable and state.reason is None


def test_passive_ejection_is_immediate_and_needs_fresh_good_probes() -> None:
    state = HealthState()
    ok(state)
    ok(state)
    assert state.eject("connection refused")
    assert not state.routable and state.reason == "connection refused"
    assert not state.eject("again")  # already out: no second transition
    assert state.reason == "again"
    assert not ok(state)
    assert ok(state) and state.routable


def test_ejection_before_any_probe_takes_it_out() -> None:
    state = HealthState()
    assert state.eject("reset") and state.healthy is False
