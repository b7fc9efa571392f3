"""``python -m admin_tui [--config PATH] [--screen NAME]``: the same as ``authproxy admin``."""

from __future__ import annotations

import sys

from authproxy.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["admin", *sys.argv[1:]]))
