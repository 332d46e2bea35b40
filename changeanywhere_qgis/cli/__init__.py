"""The command line: one parser over the engine's jobs, a progress bar, errors printed without tracebacks."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
