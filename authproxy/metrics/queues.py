"""The fair queues' series (``queue/``), read from each upstream's queue when Prometheus
scrapes, like upstream health: the request path pushes nothing but the wait histogram.

Per upstream with a queue: its capacity, the requests holding a slot and waiting, the oldest
wait, refusals by reason (``queue_full``, ``timeout``, ``drained``) and requests whose client
left while waiting; per user, how many of their requests wait — only users with a request
waiting have a series, so the admin sees who is waiting and the series come and go with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from authproxy.queue.fair_queue import FairQueue
from authproxy.queue.refusals import REASONS

__all__ = ["QUEUE_PREFIX", "QueueCollector", "QueuedUpstream"]

QUEUE_PREFIX = "authproxy_queue"


class QueuedUpstream(Protocol):
    """What the collector reads of an ``upstreams.catalog.UpstreamState`` (read-only)."""

    @property
    def name(self) -> str: ...
    @property
    def queue(self) -> FairQueue | None: ...


class QueueCollector:
    def __init__(self, *, user_label: Callable[[str], str]) -> None:
        self.source: Callable[[], Iterable[QueuedUpstream]] = tuple
        self._user_label = user_label  # the registry's cap on distinct user names

    def _families(
        self,
    ) -> tuple[
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
    ]:
        def gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{QUEUE_PREFIX}_{name}", doc, labels=["upstream", *labels])

        def counter(name: str, doc: str, *labels: str) -> CounterMetricFamily:
            return CounterMetricFamily(f"{QUEUE_PREFIX}_{name}", doc, labels=["upstream", *labels])

        return (
            gauge("capacity", "Requests the upstream may have in flight (max_inflight)."),
            gauge("in_flight", "Requests holding one of the upstream's slots."),
            gauge("waiting", "Requests waiting in the upstream's fair queue."),
            gauge("oldest_wait_seconds", "How long the longest-waiting request has waited."),
            gauge("user_waiting", "Requests of one user waiting (users waiting only).", "user"),
            counter("refusals", "Requests the queue refused, by reason.", "reason"),
            counter("left", "Requests whose client went away while they waited."),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        capacity, in_flight, waiting, oldest, per_user, refusals, left = families
        for upstream in self.source():
            queue = upstream.queue
            if queue is None:
                continue
            name, stats = upstream.name, queue.stats()
            capacity.add_metric([name], stats.capacity)
            in_flight.add_metric([name], stats.in_flight)
            waiting.add_metric([name], stats.waiting)
            oldest.add_metric([name], stats.oldest_wait)
            users: dict[str, int] = {}
            for user, count in stats.waiting_by_user.items():
                label = self._user_label(user)
                users[label] = users.get(label, 0) + count
            for label, count in sorted(users.items()):
                per_user.add_metric([name, label], count)
            for reason in REASONS:
                refusals.add_metric([name, reason], stats.refused.get(reason, 0))
            left.add_metric([name], stats.left)
        yield from families
