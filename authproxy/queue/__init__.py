"""The fair queue in front of each upstream with a capacity (``max_inflight``): its slots and
per-user waiting room (``fair_queue``), what it keeps per user and per request (``ticket``), and
why it refuses a request (``refusals``). A layer of its own below ``proxy/``: it imports only
``errors``.
"""

__all__: list[str] = []
