"""``python -m admin_tui [--config PATH] [--screen NAME]``: the same as ``authproxy admin``."""

from __future__ import annotations

import sys

from authproxy.cli.main import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main(["admin", *sys.argv[1:]]))
