"""How much a caller may do: per-user quotas and their calendar windows, and the throttle on failed
authentications.
"""
