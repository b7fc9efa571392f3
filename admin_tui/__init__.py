"""The Textual admin UI (``authproxy admin``): users, keys, models, quotas and live usage."""

from admin_tui.app import AdminApp, create_app

__all__ = ["AdminApp", "create_app"]
