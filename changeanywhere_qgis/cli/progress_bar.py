"""The command line's progress bar: a tqdm bar fed with the engine's progress fractions, made on the first report."""

from __future__ import annotations

import sys

from ..engine.progress import Progress


class ProgressBar:
    """A :class:`Progress` callback; the bar appears on the first report, so input errors print on a clean line."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, fraction: float, message: str) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=1000, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}", file=sys.stderr)
        changed = message != self.bar.desc
        self.bar.set_description_str(message, refresh=False)
        step = int(fraction * 1000) - self.bar.n
        if step:
            self.bar.update(step)
        elif changed:
            self.bar.refresh()  # a new stage at the same fraction (e.g. "training ...") must show at once

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_bar() -> tuple[Progress, ProgressBar]:
    """(the engine's Progress reporting to a bar, the bar to close when the job ends)."""
    bar = ProgressBar()
    return Progress(bar, inform=show_line), bar


def show_warning(message, category=None, filename=None, lineno=None, file=None, line=None) -> None:
    """``warnings.showwarning`` for the command line: ``warning: ...`` on a line of its own, above a running bar."""
    from tqdm import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)


def show_line(message: str) -> None:
    """A line for the user (the engine's estimate), above a running bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)
