"""The ``authproxy`` command line: serve, init, users, keys, models, usage, audit, sessions,
engines, db copy, and the admin UI's launch."""

__all__: list[str] = []
