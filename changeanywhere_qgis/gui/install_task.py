"""The "Install dependencies" action as a QgsTask: pip for QGIS's own Python in the task manager, its
progress on the task, every pip line in the log panel (tab "ChangeAnywhere install"), cancellable.

The plan (interpreter, target folder, GPU or CPU build) comes from processing/pip_install.py; the task
makes it itself when given only the profile folder, because with an NVIDIA GPU that asks pip and
nvidia-smi (seconds), which must not freeze QGIS's window.
"""

from __future__ import annotations

from qgis.core import Qgis, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from ..processing import pip_install

LOG_TAG = "ChangeAnywhere install"


class InstallDependenciesTask(QgsTask):
    done = pyqtSignal(str)  # the message (asks for a restart)
    failed = pyqtSignal(str)

    def __init__(self, plan: pip_install.InstallPlan | None = None, base=None):
        super().__init__("ChangeAnywhere: installing Python libraries", QgsTask.Flag.CanCancel)
        self.plan = plan
        self.base = base
        self.message = ""
        self.ok = False
        self.lines: list[str] = []

    def _log(self, text: str, level=Qgis.MessageLevel.Info) -> None:
        self.lines.append(text)
        QgsMessageLog.logMessage(text, LOG_TAG, level, notifyUser=False)

    def run(self) -> bool:
        try:
            if self.plan is None:
                self.plan = pip_install.plan(self.base)
            for note in self.plan.notes:
                self._log(note)
            self.ok, self.message = pip_install.run_pip(self.plan, self._log, lambda f: self.setProgress(100.0 * f), self.isCanceled)
        except Exception as exc:  # noqa: BLE001 (a bug here must reach the user, not kill the task manager)
            self.ok, self.message = False, f"Installing failed: {exc!r}"
        self._log(self.message, Qgis.MessageLevel.Success if self.ok else Qgis.MessageLevel.Critical)
        return self.ok

    def finished(self, ok: bool) -> None:  # main thread
        if ok:
            self.done.emit(self.message)
        else:
            self.failed.emit(self.message or "The installation stopped without a message.")
