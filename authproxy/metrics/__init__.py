"""Prometheus metrics: the registry the request path records into, and /metrics."""
