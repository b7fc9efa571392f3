"""Prometheus metrics of the gateway, through ``prometheus-client``.

One ``GatewayMetrics`` per application, on a registry of its own (never the module-global one),
so that tests and several apps in one process never clash. The request path calls a handful of
methods that do no I/O: label children are bound once and kept in dicts, so recording a request
costs a few dict lookups, counter increments and two histogram observations. Upstream health,
outstanding requests and the fair queues (``queues.py``) are read from the catalog's
``UpstreamState`` objects at scrape time instead of being pushed on every change.

Cardinality is bounded by design. Labels carry user names, model names, upstream names, HTTP
status codes and a few fixed reasons — never keys, paths or request ids. Models reach
``request_done`` only after the catalog authorized them and users only from the users table, so
both are bounded already; as a safety net each of them is capped at ``max_label_values``
distinct values (1000 by default) per process, and every value past the cap is counted under
``other``. Reasons outside the known set are counted under ``other`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from authproxy.metrics.queues import QUEUE_PREFIX, QueueCollector, QueuedUpstream
from authproxy.store.records import UsageRow

__all__ = [
    "LATENCY_BUCKETS",
    "MAX_AUTH_REASONS",
    "MAX_LABEL_VALUES",
    "OTHER",
    "PREFIX",
    "QUOTA_REASONS",
    "WAIT_BUCKETS",
    "GatewayMetrics",
    "LabelCap",
    "UpstreamSource",
    "UpstreamView",
]

PREFIX = "authproxy"
MAX_LABEL_VALUES = 1000
OTHER = "other"
# From a cached answer (50 ms) to a long generation on a slow GPU (5 min).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
# From a free slot (0) to the queue's default timeout (120 s) and beyond.
WAIT_BUCKETS = (0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
QUOTA_REASONS = frozenset({"rpm", "concurrency", "tokens_day", "tokens_month"})
MAX_SEEN = 100_000  # rows' label values remembered (bounded by the caps in practice)
MAX_AUTH_REASONS = 32  # error codes are constants in the source; this only guards a mistake


class LabelCap:
    """The first ``limit`` distinct values pass unchanged; any later new value becomes ``other``.

    Values seen once stay valid for the life of the process, so a user's series never moves
    from their name to ``other`` and back.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            return value
        return OTHER

    def __len__(self) -> int:
        return len(self._seen)


class UpstreamView(QueuedUpstream, Protocol):
    """What the upstream collectors read of an ``upstreams.catalog.UpstreamState`` (read-only)."""

    @property
    def routable(self) -> bool: ...
    @property
    def outstanding(self) -> int: ...


UpstreamSource = Callable[[], Iterable[UpstreamView]]


class _UpstreamCollector:
    """Health and outstanding requests per upstream, read when Prometheus scrapes."""

    def __init__(self) -> None:
        self.source: UpstreamSource = tuple

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        up = GaugeMetricFamily(
            f"{PREFIX}_upstream_up",
            "1 if the upstream is in rotation (healthy, or not checked yet), else 0.",
            labels=["upstream"],
        )
        outstanding = GaugeMetricFamily(
            f"{PREFIX}_upstream_outstanding_requests",
            "Requests forwarded to the upstream and not finished yet.",
            labels=["upstream"],
        )
        return up, outstanding

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        up, outstanding = self._families()
        for upstream in self.source():
            up.add_metric([upstream.name], 1.0 if upstream.routable else 0.0)
            outstanding.add_metric([upstream.name], float(upstream.outstanding))
        yield up
        yield outstanding


@dataclass(slots=True)
class _RequestSeries:
    """The label children one (user, model, upstream, status) combination writes to."""

    requests: Counter
    prompt: Counter
    completion: Counter
    duration: Histogram
    ttft: Histogram


class GatewayMetrics:
    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        max_label_values: int = MAX_LABEL_VALUES,
    ) -> None:
        if registry is None:
            registry = CollectorRegistry()
            # Memory, CPU, open files and GC of the gateway itself, as the global registry has.
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        self._users = LabelCap(max_label_values)
        self._models = LabelCap(max_label_values)
        self._auth_reasons = LabelCap(MAX_AUTH_REASONS)

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, labels, registry=registry)

        def histogram(name: str, doc: str) -> Histogram:
            return Histogram(
                f"{PREFIX}_{name}", doc, ["model"], registry=registry, buckets=LATENCY_BUCKETS
            )

        self._requests = counter(
            "requests",
            "Forwarded requests (one per usage row), by final status.",
            ["user", "model", "upstream", "status"],
        )
        self._tokens = counter(
            "tokens", "Tokens accounted, as in the usage table.", ["user", "model", "kind"]
        )
        self._duration = histogram(
            "request_duration_seconds", "Forwarded request duration, from forward to last byte."
        )
        self._ttft = histogram(
            "time_to_first_token_seconds",
            "Streamed requests: time until the first event reached the client.",
        )
        self._open_streams = Gauge(
            f"{PREFIX}_open_streams", "Streams being relayed right now.", registry=registry
        )
        self._quota = counter(
            "quota_rejections", "Requests refused by a quota, by reason.", ["user", "reason"]
        )
        self._auth = counter("auth_failures", "Failed authentications, by error code.", ["reason"])
        self._upstreams = _UpstreamCollector()
        registry.register(self._upstreams)
        self._queues = QueueCollector(user_label=self._users)
        registry.register(self._queues)
        self._queue_wait = Histogram(
            f"{QUEUE_PREFIX}_wait_seconds",
            "Time a request waited for a slot of the upstream (0: one was free).",
            ["upstream"],
            registry=registry,
            buckets=WAIT_BUCKETS,
        )
        self._queue_wait_children: dict[str, Histogram] = {}
        # The series of each (user, model, upstream, status) as the row has them, so that a
        # request seen before costs one lookup (the caps and labels are applied once; rows
        # that cap to the same labels get the same children from prometheus-client).
        self._seen: dict[tuple[str, str | None, str | None, int], _RequestSeries] = {}
        self._quota_children: dict[tuple[str, str], Counter] = {}
        self._auth_children: dict[str, Counter] = {}

    # -- wiring ----------------------------------------------------------------------------

    def watch_upstreams(self, source: UpstreamSource) -> None:
        """Read upstream health, load and queues from ``source()`` at every scrape."""
        self._upstreams.source = source
        self._queues.source = source

    # -- the request path (no I/O) ---------------------------------------------------------

    def request_done(self, row: UsageRow, *, user: str) -> None:
        """Count one forwarded request exactly as its usage row accounts it."""
        seen = (user, row.model, row.upstream, row.status)
        series = self._seen.get(seen)
        if series is None:
            series = self._bind(
                self._users(user),
                self._models(row.model or "unknown"),
                row.upstream or "none",
                str(row.status),
            )
            if len(self._seen) < MAX_SEEN:
                self._seen[seen] = series
        series.requests.inc()
        if row.prompt_tokens:
            series.prompt.inc(row.prompt_tokens)
        if row.completion_tokens:
            series.completion.inc(row.completion_tokens)
        series.duration.observe(row.duration_ms / 1000)
        # A plain answer's first token comes with its last: only streams say something here.
        if row.stream and row.ttft_ms is not None and row.status < 400:
            series.ttft.observe(row.ttft_ms / 1000)

    def _bind(self, user: str, model: str, upstream: str, status: str) -> _RequestSeries:
        return _RequestSeries(
            requests=self._requests.labels(user, model, upstream, status),
            prompt=self._tokens.labels(user, model, "prompt"),
            completion=self._tokens.labels(user, model, "completion"),
            duration=self._duration.labels(model),
            ttft=self._ttft.labels(model),
        )

    def queue_waited(self, upstream: str, seconds: float) -> None:
        """A request got a slot of ``upstream``'s queue after waiting ``seconds``."""
        child = self._queue_wait_children.get(upstream)
        if child is None:
            child = self._queue_wait_children[upstream] = self._queue_wait.labels(upstream)
        child.observe(seconds)

    def stream_opened(self) -> None:
        self._open_streams.inc()

    def stream_closed(self) -> None:
        self._open_streams.dec()

    def auth_failed(self, reason: str) -> None:
        reason = self._auth_reasons(reason)
        child = self._auth_children.get(reason)
        if child is None:
            child = self._auth_children[reason] = self._auth.labels(reason)
        child.inc()

    def quota_rejected(self, user: str, reason: str) -> None:
        """One request refused by a quota; ``reason`` is one of ``QUOTA_REASONS``."""
        key = (self._users(user), reason if reason in QUOTA_REASONS else OTHER)
        child = self._quota_children.get(key)
        if child is None:
            child = self._quota_children[key] = self._quota.labels(*key)
        child.inc()

    # -- the scrape ------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
