"""Benchmarks of the gateway's own cost; `python bench/overhead.py --help` is the entry point."""
