"""The dock's series of dates on a real canvas: 3 dates, a polygon drawn at date 2 (building to water) and a larger one
at date 3 (to road) over it, generated as a QgsTask; every date's layers in the group, on the input's grid."""

from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import QgsPalettedRasterRenderer
from qgis_helpers import BUILDING, BUILDING_CENTRE_PX, WATER, assert_same_grid, value_at, wait_until
from test_qgis_dock import dock, draw_over_building  # noqa: F401 (the dock fixture)

from changeanywhere_qgis.gui import series_controls


def test_the_dock_generates_a_series_of_three_dates(dock, qgis_iface, label_layer_info, tmp_path, oem_scheme):  # noqa: F811
    dock.series.dates_spin.setValue(3)
    assert dock.series.date_field_combo.isEnabled() and dock.series.draw_date_spin.maximum() == 3
    dock.set_target_class("water")
    draw_over_building(dock, label_layer_info, half=4)  # date 2 (the drawing date starts there)
    dock.series.draw_date_spin.setValue(3)
    dock.set_target_class("road")
    draw_over_building(dock, label_layer_info, half=8)
    layer = dock.polygons_layer()
    assert dock.series.date_field_combo.currentField() == "date"  # the scratch layer's date field, picked
    assert [f["date"] for f in layer.getFeatures()] == [2, 3]
    dock.output_widget.setFilePath(str(tmp_path))
    groups = []
    dock.resultsAdded.connect(groups.append)
    dock.start_generation()
    assert wait_until(lambda: dock.task is None, timeout=300), "the generation task did not finish"
    result = dock.last_result
    assert result is not None, dock.status_label.text()
    assert result["dates"] == 3 and [len(d["events"]) for d in result["series"]] == [1, 1]
    layers = {node.layer().name(): node.layer() for node in groups[0].findLayers()}
    assert set(layers) == {"T1 image", "T2 image", "T3 image", "T1 map", "T2 map", "T3 map", "change T1 to T2",
                           "change T2 to T3", "change T1 to T3"}
    for layer in layers.values():
        assert_same_grid(layer.source(), label_layer_info)
    assert isinstance(layers["T2 map"].renderer(), QgsPalettedRasterRenderer)
    row, col = BUILDING_CENTRE_PX
    road = oem_scheme.resolve("road")
    assert [value_at(layers[f"T{k} map"].source(), row, col) for k in (1, 2, 3)] == [BUILDING, WATER, road]
    assert [value_at(layers[name].source(), row, col) for name in ("change T1 to T2", "change T2 to T3", "change T1 to T3")] == [1, 1, 1]
    assert Path(result["outputs"]["t3_image.tif"]).parent.parent == tmp_path


def test_a_series_needs_the_date_field(dock, qgis_iface, label_layer_info):  # noqa: F811
    dock.set_target_class("water")
    draw_over_building(dock, label_layer_info)
    dock.series.dates_spin.setValue(3)
    dock.series.date_field_combo.setField("")
    with pytest.raises(ValueError, match="needs the date field"):
        dock.start_generation()


def test_the_docks_date_limit_is_the_engines():
    from changeanywhere_qgis.engine.events import MAX_DATES

    assert series_controls.MAX_DATES == MAX_DATES
