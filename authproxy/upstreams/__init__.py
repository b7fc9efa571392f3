"""The engines behind the gateway: which serves which model, their health, model discovery, the
background monitor, and the admin's view of them.
"""

__all__: list[str] = []
