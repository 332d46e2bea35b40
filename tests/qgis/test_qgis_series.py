"""A series of 3 dates on the bundled sample through the Processing algorithm (in QGIS and headless with qgis_process):
the destinations hold date 1, the last date and the change from T1 to TN, the series folder the date between and each
consecutive change mask, all on the input's grid, loaded into the project with the outputs' styles."""

from __future__ import annotations

import json
import os

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from qgis.core import QgsPalettedRasterRenderer
from qgis_helpers import QGIS_PROCESS, assert_same_grid, linked_plugin, qgis_process

from test_qgis_process import REPO

DESTINATIONS = {"OUTPUT_PRE_IMAGE": "pre.tif", "OUTPUT_POST_IMAGE": "post.tif", "OUTPUT_PRE_MAP": "pre_map.tif",
                "OUTPUT_POST_MAP": "post_map.tif", "OUTPUT_CHANGE_MASK": "mask.tif"}
BETWEEN = ("t2_image.tif", "t2_semantic.tif", "change_t1_t2.tif", "change_t2_t3.tif")


@pytest.fixture(scope="module")
def dated_polygons(tmp_path_factory, houston_changes_path):
    """The sample's two change polygons, the building becoming water at date 3, the trees cleared at date 2."""
    polygons = gpd.read_file(houston_changes_path)
    polygons["when"] = [3, 2]
    path = tmp_path_factory.mktemp("dated") / "dated.gpkg"
    polygons.to_file(path)
    return path


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1)


def _check_series(out, series, record, label_layer_info):
    for name in DESTINATIONS.values():
        assert_same_grid(out / name, label_layer_info)
    for name in BETWEEN:
        assert_same_grid(series / name, label_layer_info)
    pre, between, post = _read(out / "pre_map.tif"), _read(series / "t2_semantic.tif"), _read(out / "post_map.tif")
    assert np.array_equal(_read(out / "mask.tif") == 1, pre != post)  # the change mask is T1 to T3's
    assert np.array_equal(_read(series / "change_t1_t2.tif") == 1, pre != between)
    assert np.array_equal(_read(series / "change_t2_t3.tif") == 1, between != post)
    assert record["dates"] == 3 and [[e["source"] for e in d["events"]] for d in record["series"]] == [["feature 2"], ["feature 1"]]


@pytest.fixture()
def layer_tree_view(qgis_iface, monkeypatch):
    """QGIS 3.40's result loading (processing.gui.Postprocessing) asks iface for its layer tree view, which pytest-qgis's
    stand-in QgisInterface lacks: give it a real QgsLayerTreeView over the project's layer tree."""
    if hasattr(qgis_iface, "layerTreeView"):
        return qgis_iface.layerTreeView()
    from qgis.core import QgsLayerTreeModel, QgsProject
    from qgis.gui import QgsLayerTreeView

    view = QgsLayerTreeView()
    view.setModel(QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), view))
    monkeypatch.setattr(qgis_iface, "layerTreeView", lambda: view, raising=False)
    return view


def test_generate_a_series_in_qgis_loads_every_date(provider, tiny_model_dir, houston_label_path, dated_polygons,
                                                     label_layer_info, tmp_path, clean_project, layer_tree_view):
    from qgis import processing

    params = {"SEMANTIC": str(houston_label_path), "CHANGES": str(dated_polygons), "CLASS_FIELD": "target",
              "DATE_FIELD": "when", "DATES": 3, "MODEL": str(tiny_model_dir), "STEPS": 2, "SEED": 3, "DEVICE": 1,
              "OUTPUT_SERIES": str(tmp_path / "series"), "OUTPUT_RECORD": str(tmp_path / "record.json"),
              **{k: str(tmp_path / v) for k, v in DESTINATIONS.items()}}
    result = processing.runAndLoadResults("changeanywhere:generatechangesample", params)
    assert result["OUTPUT_SERIES"] == str(tmp_path / "series")
    record = json.loads((tmp_path / "series" / "sample.json").read_text())
    assert record == json.loads((tmp_path / "record.json").read_text())  # the record's destination and the series' copy
    _check_series(tmp_path, tmp_path / "series", record, label_layer_info)
    loaded = {os.path.basename(layer.source()): layer for layer in clean_project.mapLayers().values()}
    assert set(BETWEEN) <= set(loaded), sorted(loaded)
    assert isinstance(loaded["t2_semantic.tif"].renderer(), QgsPalettedRasterRenderer)  # the class palette
    mask = loaded["change_t2_t3.tif"].renderer()  # black and white, as the change mask destination
    assert isinstance(mask, QgsPalettedRasterRenderer) and [c.label for c in mask.classes()] == ["unchanged", "changed"]


def test_a_series_with_polygons_needs_the_date_field(processing_run, tiny_model_dir, houston_label_path, dated_polygons, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="needs their date field"):
        processing_run("changeanywhere:generatechangesample", {
            "SEMANTIC": str(houston_label_path), "CHANGES": str(dated_polygons), "CLASS_FIELD": "target", "DATES": 3,
            "MODEL": str(tiny_model_dir), "STEPS": 2, "DEVICE": 1, "OUTPUT_SERIES": str(tmp_path / "series"),
            **{k: str(tmp_path / v) for k, v in DESTINATIONS.items()}})
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not os.access(QGIS_PROCESS, os.X_OK), reason=f"{QGIS_PROCESS} is missing")
def test_generate_a_series_headless(tmp_path, tiny_model_dir, houston_label_path, dated_polygons, label_layer_info):
    env = linked_plugin(tmp_path, REPO / "changeanywhere_qgis")
    out = tmp_path / "out"
    ran = qgis_process(["--json", "run", "changeanywhere:generatechangesample", "--",
                        f"SEMANTIC={houston_label_path}", f"CHANGES={dated_polygons}", "CLASS_FIELD=target", "DATE_FIELD=when",
                        "DATES=3", f"MODEL={tiny_model_dir}", "STEPS=2", "SEED=3", "DEVICE=1", f"OUTPUT_SERIES={out / 'series'}",
                        *[f"{k}={out / v}" for k, v in DESTINATIONS.items()]], env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert json.loads(ran.stdout)["results"]["OUTPUT_SERIES"] == str(out / "series")
    _check_series(out, out / "series", json.loads((out / "series" / "sample.json").read_text()), label_layer_info)


def test_a_dataset_of_series_through_processing(processing_run, tiny_model_dir, houston_label_path, tmp_path):
    out = tmp_path / "ds"
    params = {"SEMANTIC": [str(houston_label_path)], "COUNT": 3, "TILE": 64, "LAYOUT": 0, "FORMAT": 1, "SEED": 4, "DATES": 3,
              "MODEL": str(tiny_model_dir), "STEPS": 1, "DEVICE": 1, "WORKERS": 1, "OUTPUT": str(out)}
    result = processing_run("changeanywhere:generatechangedataset", params)
    assert result["COUNT"] == 3 and result["GENERATED"] == 3
    records = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["dates"] == 3 for r in records) and "--dates 3" in (out / "README.md").read_text()
    for r in records:
        assert sorted(p.name for p in (out / "series" / r["name"]).iterdir()) == [
            "t1.tif", "t1_classes.tif", "t2.tif", "t2_classes.tif", "t3.tif", "t3_classes.tif"]
        with rasterio.open(out / r["files"]["t2_t3/B"]) as ds, rasterio.open(houston_label_path) as src:
            assert ds.crs == src.crs and ds.width == 64  # every pair's GeoTIFFs keep the georeferencing
    assert len(list((out / "label").glob("*.tif"))) == 9  # three pairs per series
    again = processing_run("changeanywhere:generatechangedataset", params)  # resumes: nothing left to do
    assert again["GENERATED"] == 0 and again["SKIPPED"] == 3


SIMULATE_DESTINATIONS = {"OUTPUT_PRE_MAP": "pre_map.tif", "OUTPUT_POST_MAP": "post_map.tif", "OUTPUT_CHANGE_MASK": "mask.tif",
                         "OUTPUT_EVENTS": "events.json"}
SIMULATE_BETWEEN = ("t2_semantic.tif", "change_t1_t2.tif", "change_t2_t3.tif", "events.json")


def test_simulate_a_series_in_qgis_loads_every_map(provider, houston_label_path, dated_polygons, label_layer_info, tmp_path,
                                                   clean_project, layer_tree_view):
    from qgis import processing

    params = {"SEMANTIC": str(houston_label_path), "CHANGES": str(dated_polygons), "CLASS_FIELD": "target",
              "DATE_FIELD": "when", "DATES": 3, "OUTPUT_SERIES": str(tmp_path / "series"), "OUTPUT_CHANGES": "memory:",
              **{k: str(tmp_path / v) for k, v in SIMULATE_DESTINATIONS.items()}}
    result = processing.runAndLoadResults("changeanywhere:simulatechangeevents", params)
    series = tmp_path / "series"
    assert result["OUTPUT_SERIES"] == str(series) and sorted(p.name for p in series.iterdir()) == sorted(SIMULATE_BETWEEN)
    for name in ("pre_map.tif", "post_map.tif", "mask.tif"):
        assert_same_grid(tmp_path / name, label_layer_info)
    for name in SIMULATE_BETWEEN[:3]:
        assert_same_grid(series / name, label_layer_info)
    pre, between, post = _read(tmp_path / "pre_map.tif"), _read(series / "t2_semantic.tif"), _read(tmp_path / "post_map.tif")
    assert np.array_equal(_read(tmp_path / "mask.tif") == 1, pre != post)  # the change mask is T1 to T3's
    assert np.array_equal(_read(series / "change_t1_t2.tif") == 1, pre != between)
    assert np.array_equal(_read(series / "change_t2_t3.tif") == 1, between != post)
    record = json.loads((tmp_path / "events.json").read_text())
    assert record == json.loads((series / "events.json").read_text())
    assert record["dates"] == 3 and [[e["source"] for e in d["events"]] for d in record["series"]] == [["feature 2"], ["feature 1"]]
    assert result["EVENTS"] == 2 and result["CHANGED_FRACTION"] == pytest.approx(float((pre != post).mean()))
    loaded = {os.path.basename(layer.source()): layer for layer in clean_project.mapLayers().values()}
    assert set(SIMULATE_BETWEEN[:3]) <= set(loaded), sorted(loaded)
    assert isinstance(loaded["t2_semantic.tif"].renderer(), QgsPalettedRasterRenderer)


def test_simulate_a_series_of_random_events(processing_run, houston_label_path, tmp_path):
    out = {k: str(tmp_path / v) for k, v in SIMULATE_DESTINATIONS.items()}
    result = processing_run("changeanywhere:simulatechangeevents", {
        "SEMANTIC": str(houston_label_path), "RANDOM_EVENTS": True, "DATES": 4, "SEED": 8, "OUTPUT_SERIES": str(tmp_path / "series"),
        "OUTPUT_CHANGES": "memory:", **out})
    record = json.loads((tmp_path / "events.json").read_text())
    assert record["dates"] == 4 and [d["date"] for d in record["series"]] == [2, 3, 4]
    assert all(d["events"] for d in record["series"])  # every later date has events of its own
    masks = [_read(tmp_path / "series" / f"change_t{k - 1}_t{k}.tif") for k in (2, 3, 4)]
    assert not np.array_equal(masks[0], masks[1])
    assert result["OUTPUT_SERIES"] == str(tmp_path / "series")


def test_simulate_a_series_needs_its_folder(processing_run, houston_label_path, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="needs its series folder"):
        processing_run("changeanywhere:simulatechangeevents", {
            "SEMANTIC": str(houston_label_path), "RANDOM_EVENTS": True, "DATES": 3, "OUTPUT_SERIES": "", "OUTPUT_CHANGES": "memory:",
            **{k: str(tmp_path / v) for k, v in SIMULATE_DESTINATIONS.items()}})
    assert not list(tmp_path.iterdir())
