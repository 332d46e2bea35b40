"""Benchmarks: `make bench` runs them and writes docs/reference/benchmarks.md. Commands, not timed tests."""
