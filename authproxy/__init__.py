"""authproxy: an authentication gateway for self-hosted LLM engines."""

__version__ = "0.1.0"
