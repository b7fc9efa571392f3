"""Launch profiles for inference engines: rendering one, running it, and wrapping it in a service
unit.
"""

__all__: list[str] = []
