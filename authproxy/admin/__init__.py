"""The admin service shared by the CLI, the TUI and the account page, and the reports it
draws on.
"""

__all__: list[str] = []
