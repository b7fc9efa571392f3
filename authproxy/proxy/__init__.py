"""The request path after authentication, in order: the forwarded endpoints, checking the body,
authorizing the model, the quota, forwarding with failover, relaying the answer, reading its
usage and accounting for it.
"""

__all__: list[str] = []
