"""The QGIS plugin: registers the Processing provider and adds a toolbar button that opens the dock.

Top-level imports stay light (Qt and qgis.core only): the provider, the dock and the engine are
imported when first needed, so a missing library never stops QGIS loading the plugin.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon

try:  # Qt6 (QGIS 4): QAction lives in QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt5
    from qgis.PyQt.QtWidgets import QAction

ICON = Path(__file__).resolve().parent / "icon.png"
MENU = "&ChangeAnywhere"


class ChangeAnywherePlugin:
    def __init__(self, iface):
        from .processing.dependencies import activate_installed

        activate_installed()  # the libraries the dock's "Install dependencies" put in the profile, if any
        self.iface = iface
        self.provider = None
        self.action = None
        self.dock = None

    # --- Processing (also what qgis_process calls, with no GUI) ------------------------------------
    def initProcessing(self):  # noqa: N802 (QGIS's name)
        from .processing.provider import ChangeAnywhereProvider

        if self.provider is None:
            provider = ChangeAnywhereProvider()
            # False (and the object deleted) when a provider with this id is already registered
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    # --- GUI ----------------------------------------------------------------------------------------
    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return
        self.action = QAction(QIcon(str(ICON)), "ChangeAnywhere: draw changes and generate", self.iface.mainWindow())
        self.action.setCheckable(True)
        self.action.setToolTip("Open the ChangeAnywhere dock: draw change polygons, generate a before/after pair")
        self.action.toggled.connect(self.toggle_dock)
        self.iface.addToolBarIcon(self.action)
        self.iface.addPluginToRasterMenu(MENU, self.action)
        self._warn_missing_libraries()

    def _warn_missing_libraries(self):
        from .processing.dependencies import install_command, missing_modules

        missing = missing_modules()
        if not missing or self.iface.messageBar() is None:
            return
        text = (f"needs {', '.join(missing)} in QGIS's Python: open its dock (toolbar button) and click "
                f"\"Install dependencies\", or run: {install_command(gpu=False)}")
        self.iface.messageBar().pushMessage("ChangeAnywhere", text, Qgis.MessageLevel.Warning, 0)

    def toggle_dock(self, checked: bool):
        if checked and self.dock is None:
            from .gui.dock import ChangeAnywhereDock

            self.dock = ChangeAnywhereDock(self.iface, self.iface.mainWindow())
            self.dock.visibilityChanged.connect(self.action.setChecked)
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        if self.dock is not None:
            self.dock.setVisible(checked)

    def unload(self):
        if self.dock is not None:
            self.dock.cleanup()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.action is not None:
            self.iface.removeToolBarIcon(self.action)
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.action.deleteLater()
            self.action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
