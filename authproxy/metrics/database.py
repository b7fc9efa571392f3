"""Metrics of the gateway's hold on its database, read when Prometheus scrapes: is it reachable,
what waits in memory to be written while it is not, and what the quota decided alone.

| metric | what |
| --- | --- |
| ``authproxy_database_up`` | 1 if the last check of the change counter reached the database |
| ``authproxy_usage_queue_rows`` | usage rows and audit entries waiting to be written |
| ``authproxy_usage_rows_dropped_total`` | rows dropped because that queue was full |
| ``authproxy_quota_settles_queued`` | finished requests whose quota settle waits to be written |
| ``authproxy_quota_settles_dropped_total`` | settles dropped because that queue was full |
| ``authproxy_quota_decided_alone_total`` | admissions decided on local counters (database away) |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

__all__ = ["DatabaseCollector", "DatabaseState"]

PREFIX = "authproxy"


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseState:
    up: bool
    usage_queued: int
    usage_dropped: int
    settles_queued: int = 0
    settles_dropped: int = 0
    decided_alone: int = 0


class DatabaseCollector:
    """Register on a registry; ``source()`` is called at every scrape (no I/O, no waiting)."""

    def __init__(self, source: Callable[[], DatabaseState]) -> None:
        self._source = source

    def describe(self) -> Iterator[Metric]:
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._source())

    def _families(self, s: DatabaseState | None) -> Iterator[Metric]:
        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)

        yield gauge(
            "database_up", "1 if the database answered the last check.", float(s.up) if s else 0
        )
        yield gauge(
            "usage_queue_rows",
            "Usage rows and audit entries waiting to be written.",
            s.usage_queued if s else 0,
        )
        yield counter(
            "usage_rows_dropped",
            "Usage rows dropped: the queue was full.",
            s.usage_dropped if s else 0,
        )
        yield gauge(
            "quota_settles_queued",
            "Quota settles of finished requests not written yet.",
            s.settles_queued if s else 0,
        )
        yield counter(
            "quota_settles_dropped",
            "Quota settles dropped: the queue was full.",
            s.settles_dropped if s else 0,
        )
        yield counter(
            "quota_decided_alone",
            "Admissions decided on this process's counters: the database was away.",
            s.decided_alone if s else 0,
        )
