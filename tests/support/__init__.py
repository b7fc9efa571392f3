"""What every test tier builds its data from (importable as ``support``: tests/ is on the path)."""
