"""Helpers for the QGIS tests (a module of its own: tests/ holds several conftest.py)."""

from __future__ import annotations

import os
import time

from qgis.core import QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication

# A 21 x 21 pixel block that is all 'building' (code 8) in houston_label.tif (rows 309-329, cols 17-37).
BUILDING_CENTRE_PX = (319, 27)  # row, col
BUILDING = 8
WATER = 6


def pixel_to_map(extent, width, height, row: float, col: float):
    """Centre of pixel (row, col) in map units of a north-up raster."""
    x = extent.xMinimum() + (col + 0.5) * extent.width() / width
    y = extent.yMaximum() - (row + 0.5) * extent.height() / height
    return x, y


def assert_same_grid(path: str, info) -> QgsRasterLayer:
    """The output loads as a valid raster layer with the input's CRS, extent and size."""
    crs, extent, width, height = info
    layer = QgsRasterLayer(str(path), os.path.basename(str(path)), "gdal")
    assert layer.isValid(), f"{path} is not a valid raster layer"
    assert layer.crs().authid() == crs
    assert (layer.width(), layer.height()) == (width, height)
    tol = extent.width() / width * 1e-3
    for a, b in zip((layer.extent().xMinimum(), layer.extent().yMinimum(), layer.extent().xMaximum(), layer.extent().yMaximum()),
                    (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())):
        assert abs(a - b) < tol, f"{path}: extent {layer.extent().toString()} != {extent.toString()}"
    return layer


def wait_until(predicate, timeout: float = 180.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()




QGIS_PROCESS = "/usr/bin/qgis_process.bin"  # /usr/bin/qgis_process (the wrapper) is broken on Debian 12


def qgis_process_env(plugin_dir, home) -> dict:
    """A headless qgis_process environment: a throw-away profile, our plugin folder, this venv's packages."""
    import sysconfig

    env = dict(os.environ)
    site = sysconfig.get_paths()["purelib"]  # onnxruntime, rasterio, ... of the interpreter running the tests
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env.pop("QGIS_CUSTOM_CONFIG_PATH", None)  # pytest-qgis's profile: each qgis_process run here gets its own
    env.update({
        "QGIS_CUSTOM_CONFIG_PATH": str(home / "qgis-profile"),
        "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"), "QT_QPA_PLATFORM": "offscreen",
        "QGIS_PLUGINPATH": str(plugin_dir),
        "PYTHONPATH": os.pathsep.join(p for p in (site, env.get("PYTHONPATH", "")) if p),
    })
    return env


def qgis_process(args, env, timeout=300):
    import subprocess

    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def linked_plugin(root, plugin, path_first: str | None = None) -> dict:
    """A qgis_process environment under ``root`` with ``plugin`` (a changeanywhere_qgis folder) linked into its
    plugin folder and enabled; ``path_first`` is put before PATH first (the Python qgis_process names)."""
    plugins, home = root / "plugins", root / "home"
    plugins.mkdir()
    home.mkdir()
    (plugins / "changeanywhere_qgis").symlink_to(plugin, target_is_directory=True)
    env = qgis_process_env(plugins, home)
    if path_first:
        env["PATH"] = os.pathsep.join([path_first, env.get("PATH", "")])
    enabled = qgis_process(["plugins", "enable", "changeanywhere_qgis"], env)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    return env


def show_canvas(canvas) -> None:
    """Show the canvas's window (offscreen): only a laid-out canvas gets its real pixel size."""
    canvas.window().show()
    QCoreApplication.processEvents()


def value_at(path, row: int, col: int) -> int:
    """Band 1 at pixel (row, col), read through QGIS's GDAL provider."""
    from qgis.core import QgsPointXY

    layer = QgsRasterLayer(str(path), "probe", "gdal")
    extent = layer.extent()
    x, y = pixel_to_map(extent, layer.width(), layer.height(), row, col)
    value, ok = layer.dataProvider().sample(QgsPointXY(x, y), 1)
    assert ok, f"no value at row {row}, col {col} of {path}"
    return int(value)
