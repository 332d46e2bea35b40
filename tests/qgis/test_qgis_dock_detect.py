"""The dock's "Detect change" section on a real canvas: two raster layers and a real detector package (trained a few
steps here) in, a QgsTask run, the probability, mask and polygons added in a group and styled; a pair off each other's
grid is refused with the difference named, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from detector_package import SAMPLES, detector_package
from qgis.core import QgsPalettedRasterRenderer, QgsRasterLayer, QgsSingleBandPseudoColorRenderer, QgsVectorLayer
from qgis_helpers import wait_until

from changeanywhere_qgis.gui.detect_section import DetectSection
from changeanywhere_qgis.gui.dock import ChangeAnywhereDock

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> Path:
    return detector_package(tmp_path_factory.mktemp("detector"))


@pytest.fixture()
def section(qgis_iface, clean_project, tmp_path):
    a = QgsRasterLayer(str(SAMPLES / "houston_image.tif"), "A", "gdal")
    b = QgsRasterLayer(str(REPO / "data" / "train" / "oem" / "images" / "houston_16.tif"), "B", "gdal")
    assert a.isValid() and b.isValid()
    clean_project.addMapLayers([a, b])
    dock = ChangeAnywhereDock(qgis_iface)
    s = dock.detect_section
    assert dock.findChild(DetectSection) is s  # in the dock, not only made
    s.before_combo.setLayer(a)
    s.output_widget.setFilePath(str(tmp_path))
    yield s, a, b, tmp_path
    dock.cleanup()
    dock.deleteLater()


def run_task(s):
    task = s.start_detection()
    outcome = {}
    task.done.connect(lambda r: outcome.setdefault("done", r))
    task.failed.connect(lambda m: outcome.setdefault("failed", m))
    assert wait_until(lambda: outcome or s.detect_button.isEnabled(), timeout=300)
    assert wait_until(lambda: s.detect_button.isEnabled(), timeout=60)
    return outcome


def test_detect_adds_the_outputs_styled_in_a_group(section, package, clean_project):
    s, a, _, out = section
    s.after_combo.setLayer(a)
    s.detector_widget.setFilePath(str(package))
    s.threshold_spin.setValue(0.3)
    groups = []
    s.resultsAdded.connect(groups.append)
    outcome = run_task(s)
    assert "done" in outcome, outcome
    assert wait_until(lambda: groups, timeout=30)
    layers = {node.layer().name(): node.layer() for node in groups[0].findLayers()}
    assert set(layers) == {"Change probability", "Change mask", "Change polygons"}
    assert isinstance(layers["Change probability"].renderer(), QgsSingleBandPseudoColorRenderer)
    assert isinstance(layers["Change mask"].renderer(), QgsPalettedRasterRenderer)
    assert isinstance(layers["Change polygons"], QgsVectorLayer) and layers["Change polygons"].crs().authid() == "EPSG:4326"
    assert layers["Change mask"].extent() == a.extent() and layers["Change mask"].crs() == a.crs()
    folder = Path(outcome["done"]["out"])
    assert folder.parent == out and json.loads((folder / "detection.json").read_text())["threshold"] == 0.3


def test_a_pair_off_grid_is_refused_naming_the_difference(section, package):
    s, _, b, out = section
    s.after_combo.setLayer(b)
    s.detector_widget.setFilePath(str(package))
    outcome = run_task(s)
    assert "not on image A's grid (size 1024x1024 vs 512x512" in outcome.get("failed", ""), outcome
    assert "Resample B onto A's grid" in s.status_label.text() or "--resample" in s.status_label.text()
    assert list(out.iterdir()) == []
