"""The parser of ``python -m changeanywhere_qgis generate | simulate | info | dataset``, and ``main``.

A thin shell over the engine: parse, run the command's handler, print errors without tracebacks.
Ctrl-C cancels; the engine's temporary output folder is removed, so nothing partial is left.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ..engine.errors import ChangeAnywhereError
from .dataset_command import add_dataset_command
from .sample_commands import add_sample_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m changeanywhere_qgis", description="ChangeAnywhere: change-detection samples from land-cover maps.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_sample_commands(sub)
    add_dataset_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = lambda message, *a, **k: f"warning: {message}\n"
    try:
        return args.handler(args)
    except ChangeAnywhereError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled: nothing was written", file=sys.stderr)
        return 130
