"""The plugin as QGIS loads it: classFactory, toolbar button, dock, provider, missing-library note, unload."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from qgis.core import QgsApplication

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "changeanywhere_qgis"
# What plugins.qgis.org asks for (mandatory ones first), and what this plugin promises.
REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository",
                     "tracker", "homepage", "tags", "category", "icon", "experimental", "deprecated", "changelog",
                     "hasProcessingProvider", "qgisMaximumVersion")


class Iface:
    """pytest-qgis's QgisInterface stub, plus the menu calls the plugin makes."""

    def __init__(self, base):
        self._base = base
        self.menu_actions = []

    def __getattr__(self, name):
        return getattr(self._base, name)

    def addPluginToRasterMenu(self, menu, action):  # noqa: N802
        self.menu_actions.append((menu, action))

    def removePluginRasterMenu(self, menu, action):  # noqa: N802
        self.menu_actions.remove((menu, action))

    def removeDockWidget(self, dock):  # noqa: N802
        dock.hide()


def _metadata(path: Path) -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return dict(parser["general"])


def test_metadata_has_every_field_and_is_inside_the_plugin_folder():
    top = _metadata(REPO / "metadata.txt")
    for key in REQUIRED_METADATA:
        assert top.get(key.lower()), f"metadata.txt lacks {key}"
    assert top["qgisminimumversion"] == "3.22" and top["qgismaximumversion"] == "4.99"
    assert top["hasprocessingprovider"] == "yes"
    assert (PLUGIN_DIR / top["icon"]).is_file()
    assert _metadata(PLUGIN_DIR / "metadata.txt") == top  # QGIS reads the plugin folder's copy (a link here)


def test_plugin_import_is_light():
    """Loading the plugin must not import the engine's libraries (QGIS must load it without them)."""
    code = ("import sys; from changeanywhere_qgis import classFactory; import changeanywhere_qgis.plugin; "
            "heavy = [m for m in ('onnxruntime', 'rasterio', 'geopandas', 'scipy', 'changeanywhere_qgis.engine.pipeline') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    ran = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_plugin_loads_opens_its_dock_and_unloads(qgis_iface, qgis_processing, monkeypatch):
    from changeanywhere_qgis import classFactory
    from changeanywhere_qgis.processing import dependencies

    registry = QgsApplication.processingRegistry()
    had_provider = registry.providerById("changeanywhere") is not None
    iface = Iface(qgis_iface)
    # as if onnxruntime were not installed in QGIS's Python: the plugin still loads and says how to install it
    monkeypatch.setattr(dependencies, "missing_modules", lambda: ["onnxruntime"])
    plugin = classFactory(iface)
    plugin.initGui()
    warnings = qgis_iface.messageBar().get_messages(1)
    assert warnings and "-m pip install" in warnings[-1] and "onnxruntime" in warnings[-1]
    assert "Install dependencies" in warnings[-1]  # the one-click action (it picks the GPU build itself)
    assert registry.providerById("changeanywhere") is not None
    assert iface.menu_actions and iface.menu_actions[0][1] is plugin.action
    assert not plugin.action.icon().isNull()

    plugin.action.setChecked(True)  # the toolbar button opens the dock
    assert plugin.dock is not None and not plugin.dock.isHidden()
    assert not plugin.dock.generate_button.isEnabled()  # onnxruntime "missing"
    assert "pip install" in plugin.dock.status_label.text()
    assert not plugin.dock.install_button.isHidden() and plugin.dock.install_button.isEnabled()

    plugin.unload()
    assert plugin.dock is None and plugin.action is None and not iface.menu_actions
    if not had_provider:
        assert registry.providerById("changeanywhere") is None
