"""GatewayMetrics without sockets: bounded labels, own registries, scrape-time upstream state,
and what counts as a direct local scrape."""

from __future__ import annotations

from dataclasses import dataclass
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from support.factories import usage_row

from authproxy.metrics.endpoint import is_direct_local, names_loopback
from authproxy.metrics.registry import OTHER, GatewayMetrics, LabelCap
from authproxy.queue.fair_queue import FairQueue

ROW = usage_row(
    user_id=1,
    key_id=1,
    model="tiny",
    upstream="local",
    prompt_tokens=5,
    completion_tokens=8,
    duration_ms=1500.0,
    ttft_ms=200.0,
    stream=True,
)


def _metrics(limit: int = 1000) -> tuple[GatewayMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return GatewayMetrics(registry=registry, max_label_values=limit), registry


def _requests(registry: CollectorRegistry, **labels: str) -> float | None:
    return registry.get_sample_value("authproxy_requests_total", labels)


def test_label_cap_keeps_the_first_values_and_folds_the_rest() -> None:
    cap = LabelCap(2)
    assert [cap(v) for v in ("a", "b", "c", "a", "d", "b")] == ["a", "b", OTHER, "a", OTHER, "b"]
    assert len(cap) == 2


def test_users_and_models_past_the_cap_are_counted_as_other() -> None:
    metrics, registry = _metrics(limit=3)
    for i in range(5):
        metrics.request_done(ROW, user=f"u{i}")
        metrics.request_done(ROW._replace(model=f"m{i}"), user="u0")
    metrics.request_done(ROW, user="u1")  # an early user keeps their own series
    base = {"upstream": "local", "status": "200"}
    assert _requests(registry, user="u0", model="tiny", **base) == 1
    assert _requests(registry, user="u1", model="tiny", **base) == 2
    assert _requests(registry, user="u2", model="tiny", **base) == 1
    assert _requests(registry, user="u3", model="tiny", **base) is None
    assert _requests(registry, user=OTHER, model="tiny", **base) == 2
    assert _requests(registry, user="u0", model="m0", **base) == 1
    assert _requests(registry, user="u0", model="m1", **base) == 1
    assert _requests(registry, user="u0", model="m2", **base) is None
    assert _requests(registry, user="u0", model=OTHER, **base) == 3
    # So the number of series stays bounded however many names come along.
    users = {s.labels["user"] for f in registry.collect() for s in f.samples if "user" in s.labels}
    assert users == {"u0", "u1", "u2", OTHER}


def test_a_request_is_counted_like_its_usage_row() -> None:
    metrics, registry = _metrics()
    metrics.request_done(ROW, user="alice")
    metrics.request_done(ROW._replace(stream=False, status=502, prompt_tokens=0), user="alice")
    get = registry.get_sample_value
    assert get("authproxy_tokens_total", {"user": "alice", "model": "tiny", "kind": "prompt"}) == 5
    completion = {"user": "alice", "model": "tiny", "kind": "completion"}
    assert get("authproxy_tokens_total", completion) == 16
    assert get("authproxy_request_duration_seconds_count", {"model": "tiny"}) == 2
    assert get("authproxy_request_duration_seconds_sum", {"model": "tiny"}) == 3.0
    assert get("authproxy_request_duration_seconds_bucket", {"model": "tiny", "le": "1.0"}) == 0
    assert get("authproxy_request_duration_seconds_bucket", {"model": "tiny", "le": "2.5"}) == 2
    # Only the stream that succeeded says anything about the time to the first token.
    assert get("authproxy_time_to_first_token_seconds_count", {"model": "tiny"}) == 1
    assert get("authproxy_time_to_first_token_seconds_sum", {"model": "tiny"}) == 0.2
    assert _requests(registry, user="alice", model="tiny", upstream="local", status="502") == 1


def test_streams_quota_and_auth_counters() -> None:
    metrics, registry = _metrics()
    get = registry.get_sample_value
    metrics.stream_opened()
    metrics.stream_opened()
    metrics.stream_closed()
    assert get("authproxy_open_streams") == 1
    metrics.quota_rejected(user="alice", reason="rpm")
    metrics.quota_rejected("alice", "rpm")
    metrics.quota_rejected(user="alice", reason="whatever")  # an unknown reason stays bounded
    name = "authproxy_quota_rejections_total"
    assert get(name, {"user": "alice", "reason": "rpm"}) == 2
    assert get(name, {"user": "alice", "reason": OTHER}) == 1
    metrics.auth_failed("invalid_api_key")
    assert get("authproxy_auth_failures_total", {"reason": "invalid_api_key"}) == 1


@dataclass
class FakeUpstream:
    name: str
    routable: bool
    outstanding: int
    queue: FairQueue | None = None


def test_upstream_state_is_read_at_scrape_time() -> None:
    metrics, registry = _metrics()
    assert registry.get_sample_value("authproxy_upstream_up", {"upstream": "a"}) is None
    a, b = FakeUpstream("a", False, 0), FakeUpstream("b", True, 2)
    metrics.watch_upstreams(lambda: (a, b))
    a.routable, b.routable, a.outstanding = True, False, 3  # changed after wiring: still seen
    get = registry.get_sample_value
    assert get("authproxy_upstream_up", {"upstream": "a"}) == 1
    assert get("authproxy_upstream_up", {"upstream": "b"}) == 0
    assert get("authproxy_upstream_outstanding_requests", {"upstream": "a"}) == 3
    assert get("authproxy_upstream_outstanding_requests", {"upstream": "b"}) == 2


def test_each_instance_has_its_own_registry() -> None:
    one, two = GatewayMetrics(), GatewayMetrics()  # would clash on the global registry
    one.request_done(ROW, user="alice")
    labels = {"user": "alice", "model": "tiny", "upstream": "local", "status": "200"}
    assert REGISTRY.get_sample_value("authproxy_requests_total", labels) is None
    assert one.registry.get_sample_value("authproxy_requests_total", labels) == 1
    assert one.registry is not two.registry
    body, content_type = two.render()
    assert content_type.startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"authproxy_requests", "authproxy_open_streams", "process_cpu_seconds"} <= names
    assert b"alice" not in body


LOCAL_HOST = {"Host": "localhost:8080"}


@pytest.mark.parametrize(
    ("peer", "headers", "local"),
    [
        ("127.0.0.1", LOCAL_HOST, True),
        ("127.0.0.2", LOCAL_HOST, True),
        ("::1", LOCAL_HOST, True),
        ("::ffff:127.0.0.1", LOCAL_HOST, True),
        ("10.0.0.1", LOCAL_HOST, False),
        ("::ffff:10.0.0.1", LOCAL_HOST, False),
        (None, LOCAL_HOST, False),  # a unix socket
        ("127.0.0.1", {**LOCAL_HOST, "X-Forwarded-For": "127.0.0.1"}, False),
        ("127.0.0.1", {**LOCAL_HOST, "Forwarded": "for=198.51.100.7"}, False),
        ("127.0.0.1", {**LOCAL_HOST, "x-real-ip": "198.51.100.7"}, False),
        ("127.0.0.1", {}, False),  # no Host: nothing says it was meant for this machine
        ("127.0.0.1", {"Host": "evil.example"}, False),  # DNS rebinding
    ],
)
def test_direct_local_means_loopback_peer_and_host_and_no_proxy_header(
    peer: str | None, headers: dict[str, str], local: bool
) -> None:
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 50000) if peer else None
    request = make_mocked_request("GET", "/metrics", headers=headers, transport=transport)
    assert is_direct_local(request) is local


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LocalHost:9090",
        "127.0.0.1",
        "127.9.9.9:1",
        "[::1]",
        "[::1]:9090",
        "::1",
        "[::ffff:127.0.0.1]:80",
        " localhost ",
    ],
)
def test_loopback_host_names(host: str) -> None:
    assert names_loopback(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "evil.example",
        "evil.example:9090",
        "localhost.evil.example",
        "127.0.0.1.evil.example",
        "[::1].evil.example",
        "localhost:9090@evil.example",
        "localhost:",
        "localhost:123456",
        "localhost:٣",
        "[127.0.0.1]",
        "[::2]",
        "10.0.0.1",
        "0.0.0.0",
        "2130706433",
        "[::1",
        "::1]",
        "localhost\x00.evil",
        "ⓛocalhost",
    ],
)
def test_other_host_names(host: str) -> None:
    assert not names_loopback(host)
