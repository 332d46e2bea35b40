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


