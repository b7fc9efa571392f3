"""Prometheus metrics: the registry the request path records into, and /metrics."""

__all__: list[str] = []
