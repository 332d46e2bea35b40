"""QGIS test helpers: the provider registered once, the sample's grid, waiting for tasks.

pytest-qgis starts one headless QgsApplication (pytest.ini: qgis_qui_enabled = false).
"""

from __future__ import annotations

import os

import pytest

# Opening a raster in QGIS computes statistics; never write them as .aux.xml beside the samples.
os.environ["GDAL_PAM_ENABLED"] = "NO"

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer  # noqa: E402


@pytest.fixture(scope="session")
def provider(qgis_app, qgis_processing):
    from changeanywhere_qgis.processing.provider import ChangeAnywhereProvider

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("changeanywhere")
    if existing is not None:
        yield existing
        return
    prov = ChangeAnywhereProvider()
    assert registry.addProvider(prov)
    yield prov
    registry.removeProvider(prov)


@pytest.fixture(scope="session")
def processing_run(provider):
    from qgis import processing

    return processing.run


@pytest.fixture(scope="session")
def label_layer_info(qgis_app, houston_label_path):
    """(crs authid, extent, width, height) of the sample land-cover raster, as QGIS reads it."""
    layer = QgsRasterLayer(str(houston_label_path), "label", "gdal")
    assert layer.isValid()
    return layer.crs().authid(), layer.extent(), layer.width(), layer.height()


@pytest.fixture()
def clean_project(qgis_app):
    QgsProject.instance().clear()
    yield QgsProject.instance()
    QgsProject.instance().clear()
