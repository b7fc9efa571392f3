"""How much a caller may do: per-user quotas and their calendar windows, the throttle on failed
authentications, and the sliding window they (and the login limiter) count with.
"""

__all__: list[str] = []
