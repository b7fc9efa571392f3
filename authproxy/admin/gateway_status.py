"""What a running gateway on this machine says about itself, read from its ``/metrics``.

The admin UI runs on the gateway's host (over SSH), so it scrapes ``/metrics`` the way a local
Prometheus does: without a key, from loopback. Open streams, quota rejections, the gateway's
own view of its upstreams and who waits in its fair queues live only in the gateway's memory;
this is how the admin sees them. Nothing here is needed for the rest: when no gateway answers,
the admin UI says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from authproxy.config.schema import Config
from authproxy.metrics.endpoint import METRICS_PATH

__all__ = ["GatewayStatus", "QueueStatus", "gateway_status", "metrics_url", "parse_metrics"]

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 (mapped away)


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """The fair queues of all upstreams with a ``max_inflight``, added up."""

    queues: int = 0  # upstreams with a queue (0: no upstream has a capacity)
    capacity: int = 0
    in_flight: int = 0
    waiting_by_user: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # since start, every reason

    @property
    def waiting(self) -> int:
        return sum(self.waiting_by_user.values())


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    url: str
    reachable: bool
    detail: str = "ok"  # why not, when not reachable
    open_streams: int = 0
    quota_rejections: dict[str, int] = field(default_factory=dict)  # reason -> since start
    upstream_up: dict[str, bool] = field(default_factory=dict)  # the gateway's routing view
    queue: QueueStatus = field(default_factory=QueueStatus)

    @property
    def rejections(self) -> int:
        return sum(self.quota_rejections.values())


def metrics_url(config: Config) -> str:
    host = _WILDCARDS.get(config.listen.host, config.listen.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.listen.port}{METRICS_PATH}"


def parse_metrics(url: str, text: str) -> GatewayStatus:
    open_streams = 0
    rejections: dict[str, int] = {}
    upstream_up: dict[str, bool] = {}
    queue = dict.fromkeys(("queues", "capacity", "in_flight", "refused"), 0)
    waiting: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "authproxy_open_streams":
                open_streams = int(s.value)
            elif s.name == "authproxy_quota_rejections_total":
                reason = s.labels.get("reason", "other")
                rejections[reason] = rejections.get(reason, 0) + int(s.value)
            elif s.name == "authproxy_upstream_up":
                upstream_up[s.labels.get("upstream", "?")] = s.value >= 1
            elif s.name == "authproxy_queue_capacity":
                queue["queues"] += 1
                queue["capacity"] += int(s.value)
            elif s.name == "authproxy_queue_in_flight":
                queue["in_flight"] += int(s.value)
            elif s.name == "authproxy_queue_refusals_total":
                queue["refused"] += int(s.value)
            elif s.name == "authproxy_queue_user_waiting" and s.value >= 1:
                user = s.labels.get("user", "?")
                waiting[user] = waiting.get(user, 0) + int(s.value)
    queues = QueueStatus(waiting_by_user=waiting, **queue)
    return GatewayStatus(url, True, "ok", open_streams, rejections, upstream_up, queues)


async def gateway_status(url: str, *, timeout: float = 2.0) -> GatewayStatus:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp,
        ):
            if resp.status != 200:
                return GatewayStatus(url, False, f"HTTP {resp.status}")
            text = await resp.text()
    except TimeoutError:
        return GatewayStatus(url, False, "timed out")
    except aiohttp.ClientConnectorError:
        return GatewayStatus(url, False, "not running")
    except aiohttp.ClientError as exc:
        return GatewayStatus(url, False, type(exc).__name__)
    try:
        return parse_metrics(url, text)
    except ValueError:
        return GatewayStatus(url, False, "not Prometheus text")
