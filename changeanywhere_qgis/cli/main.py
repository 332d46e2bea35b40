"""The parser of ``python -m changeanywhere_qgis generate | simulate | info | dataset``, and ``main``.

A thin shell over the engine: parse, run the command's handler, print errors without tracebacks.
Ctrl-C cancels, and so does SIGTERM (``kill``, a batch system's time limit): the engine's
temporary output folder is removed, so nothing partial is left. Warnings print on their own
lines, above the progress bar.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import warnings
from pathlib import Path

from ..engine.errors import ChangeAnywhereError
from ..engine.io import write_failure
from .dataset_command import add_dataset_command
from .detect_command import add_detect_command
from .progress_bar import show_warning
from .sample_commands import add_sample_commands


def command_name() -> str:
    """How this command line was started: ``changeanywhere`` (the installed package's command) or ``python -m ...``."""
    return "changeanywhere" if Path(sys.argv[0] if sys.argv else "").name == "changeanywhere" else "python -m changeanywhere_qgis"


def resume_command(argv: list[str]) -> str:
    """The command that finishes what ``argv`` began: the same, without ``--overwrite`` (it would start again)."""
    return f"{command_name()} {shlex.join(a for a in argv if a != '--overwrite')}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=command_name(), description="ChangeAnywhere: change-detection samples from land-cover maps.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_sample_commands(sub)
    add_dataset_command(sub)
    add_detect_command(sub)
    return parser


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM cancels as Ctrl-C does: the same clean-up, the same message


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.resume_command = resume_command(argv)
    saved = warnings.showwarning, signal.getsignal(signal.SIGTERM)
    warnings.showwarning = show_warning
    in_main_thread = threading.current_thread() is threading.main_thread()  # only it may set handlers
    if in_main_thread:
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return args.handler(args)
    except ChangeAnywhereError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled: nothing was written", file=sys.stderr)
        return 130
    except OSError as exc:  # a write the engine does not wrap itself (e.g. a dataset's card on a full disk)
        failure = write_failure(exc, getattr(args, "out", None) or ".", any_io_error=False, outcome="the run stopped")
        if failure is None:
            raise
        print(f"error: {failure}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = saved[0]
        if in_main_thread:
            signal.signal(signal.SIGTERM, saved[1])
