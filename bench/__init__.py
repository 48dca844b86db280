"""Benchmarks (scripts, not tests): speed, memory and quality side by side, written into docs/benchmarks.md.

Each script runs as ``python -m bench.<name> [--quick] [--write]``, prints a markdown table and one JSON line, and
with ``--write`` replaces its own section of docs/benchmarks.md (between ``<!-- <name>:start -->`` and
``<!-- <name>:end -->``). Shared helpers live in :mod:`bench.common`.
"""
