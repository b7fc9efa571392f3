"""authproxy: an authentication gateway for self-hosted LLM engines."""

__all__ = ["__version__"]

__version__ = "0.1.0"
