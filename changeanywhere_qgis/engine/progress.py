"""Progress reporting and cancellation, shared by the command line and the QGIS adapters.

The engine counts work in units (one tile through one network call) and calls ``report`` with a
fraction and a message; between units it asks ``is_cancelled`` and stops with ``Cancelled``.
``inform`` receives whole lines the user should read (the estimate of time and memory).
"""

from __future__ import annotations

from typing import Callable

from .errors import Cancelled


class Progress:
    def __init__(
        self,
        report: Callable[[float, str], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        inform: Callable[[str], None] | None = None,
    ) -> None:
        self._report = report or (lambda fraction, message: None)
        self._is_cancelled = is_cancelled or (lambda: False)
        self._inform = inform or (lambda message: None)
        self.total = 1
        self.done = 0
        self.message = ""

    def start(self, total_units: int) -> None:
        self.total, self.done = max(int(total_units), 1), 0
        self._report(0.0, "starting")

    def stage(self, message: str) -> None:
        self.message = message
        self.check()
        self._report(min(self.done / self.total, 1.0), message)

    def advance(self, units: int = 1) -> None:
        self.done += units
        self.check()
        self._report(min(self.done / self.total, 1.0), self.message)

    def info(self, message: str) -> None:
        """A line for the user (e.g. the estimate before long work): the command line prints it, QGIS logs it."""
        self._inform(message)

    def cancelled(self) -> bool:
        """Whether the user asked to stop (for loops that wait on others' work, e.g. dataset workers)."""
        return bool(self._is_cancelled())

    def check(self) -> None:
        if self._is_cancelled():
            raise Cancelled("Cancelled by the user; nothing was written.")
