"""Generation as a QgsTask: the engine runs in QGIS's task manager, the UI stays responsive.

The task gets plain values only (file paths, numbers): every QGIS layer is read in the main
thread before it starts. ``done`` carries the engine's result dict, ``failed`` a message the user
can act on; cancelling makes the engine stop and remove its temporary folder (nothing written).
"""

from __future__ import annotations

import traceback

from qgis.core import QgsTask
from qgis.PyQt.QtCore import pyqtSignal


class GenerateTask(QgsTask):
    done = pyqtSignal(dict)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    stage = pyqtSignal(str)

    def __init__(self, semantic: str, out_dir: str, spec_kwargs: dict, *, image=None, model=None, remap=None,
                 band: int = 1, settings_kwargs: dict | None = None, overwrite: bool = False):
        super().__init__("ChangeAnywhere: generating a change sample", QgsTask.Flag.CanCancel)
        self.args = dict(semantic=semantic, out_dir=out_dir, image=image, model=model, remap=remap, band=band, overwrite=overwrite)
        self.spec_kwargs = dict(spec_kwargs)
        self.settings_kwargs = dict(settings_kwargs or {})
        self.result: dict | None = None
        self.error: str | None = None
        self.was_cancelled = False

    def run(self) -> bool:
        try:
            from ..engine.errors import Cancelled, ChangeAnywhereError
            from ..processing.common import run_in_python_thread
            from ..engine.pipeline import ChangeSpec, GenerateSettings, generate
            from ..engine.progress import Progress
        except ImportError as exc:
            self.error = self._import_error(exc)
            return False

        def report(fraction: float, message: str) -> None:
            self.setProgress(100.0 * fraction)
            if message:
                self.stage.emit(message)

        a = self.args
        try:
            self.result = run_in_python_thread(  # a Python thread: pyproj crashes in QThreads
                generate,
                a["semantic"], a["out_dir"], ChangeSpec(**self.spec_kwargs), image=a["image"], model=a["model"],
                remap=a["remap"], band=a["band"], overwrite=a["overwrite"],
                settings=GenerateSettings(**self.settings_kwargs), progress=Progress(report, self.isCanceled),
            )
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
            self.failed.emit(self.error or "The generation stopped without a message.")
