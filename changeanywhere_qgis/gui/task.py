"""The engine as QgsTasks: a run in QGIS's task manager while the UI stays responsive.

A task gets plain values only (file paths, numbers): every QGIS layer is read in the main thread before it starts.
``done`` carries the engine's result dict, ``failed`` a message the user can act on; cancelling makes the engine stop
and remove its temporary folder (nothing written). :class:`EngineTask` holds what every such task shares (the
engine's errors turned into messages, a missing library into the install hint); :class:`GenerateTask` makes a change
sample, ``detect_section.DetectTask`` detects change in a pair.
"""

from __future__ import annotations

import traceback

from qgis.core import QgsTask
from qgis.PyQt.QtCore import pyqtSignal


class EngineTask(QgsTask):
    """One engine call in a Python thread (pyproj crashes in QThreads); subclasses say which, in :meth:`call`."""

    done = pyqtSignal(dict)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    stage = pyqtSignal(str)
    WHAT = "The run"  # "<WHAT> stopped without a message."

    def __init__(self, title: str):
        super().__init__(title, QgsTask.Flag.CanCancel)
        self.result: dict | None = None
        self.error: str | None = None
        self.was_cancelled = False

    def call(self, progress) -> dict:
        """The engine call, with the engine's ``Progress`` (imports inside: a missing library is reported, not raised)."""
        raise NotImplementedError

    def run(self) -> bool:
        try:
            from ..engine.errors import Cancelled, ChangeAnywhereError
            from ..engine.progress import Progress
            from ..processing.common import run_in_python_thread
        except ImportError as exc:
            self.error = self._import_error(exc)
            return False

        def report(fraction: float, message: str) -> None:
            self.setProgress(100.0 * fraction)
            if message:
                self.stage.emit(message)

        try:
            self.result = run_in_python_thread(self.call, Progress(report, self.isCanceled))
            return True
        except Cancelled:
            self.was_cancelled = True
            return False
        except ChangeAnywhereError as exc:
            self.error = str(exc)
            return False
        except ImportError as exc:
            self.error = self._import_error(exc)
            return False
        except Exception as exc:  # an engine bug: say so, with where it happened
            self.error = f"Unexpected error: {exc!r}\n{traceback.format_exc(limit=6)}"
            return False

    @staticmethod
    def _import_error(exc: ImportError) -> str:
        from ..processing.dependencies import install_hint, missing_library

        library = missing_library(exc)
        if library is None:
            return f"Unexpected error (a bug in the plugin, please report it): {exc!r}"
        return f"{install_hint([library])} ({exc})"

    def finished(self, ok: bool) -> None:  # main thread
        if ok and self.result is not None:
            self.done.emit(self.result)
        elif self.was_cancelled or (self.isCanceled() and not self.error):
            self.cancelled.emit()
        else:
            self.failed.emit(self.error or f"{self.WHAT} stopped without a message.")


class GenerateTask(EngineTask):
    WHAT = "The generation"

    def __init__(self, semantic: str, out_dir: str, spec_kwargs: dict, *, image=None, model=None, remap=None,
                 band: int = 1, settings_kwargs: dict | None = None, overwrite: bool = False):
        super().__init__("ChangeAnywhere: generating a change sample")
        self.args = dict(semantic=semantic, out_dir=out_dir, image=image, model=model, remap=remap, band=band, overwrite=overwrite)
        self.spec_kwargs = dict(spec_kwargs)
        self.settings_kwargs = dict(settings_kwargs or {})

    def call(self, progress) -> dict:
        from ..engine.pipeline import ChangeSpec, GenerateSettings, generate

        a = self.args
        return generate(a["semantic"], a["out_dir"], ChangeSpec(**self.spec_kwargs), image=a["image"], model=a["model"],
                        remap=a["remap"], band=a["band"], overwrite=a["overwrite"],
                        settings=GenerateSettings(**self.settings_kwargs), progress=progress)
