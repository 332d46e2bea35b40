"""The three algorithms through processing.run on the real sample, with the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qgis.core import (
    QgsFeature,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsVectorLayer,
)
from qgis_helpers import BUILDING, BUILDING_CENTRE_PX, WATER, assert_same_grid, value_at


def test_provider_lists_its_algorithms(provider):
    ids = {a.id() for a in provider.algorithms()}
    assert {"changeanywhere:generatechangesample", "changeanywhere:modelinformation", "changeanywhere:simulatechangeevents"} <= ids
    from changeanywhere_qgis.processing.provider import ALGORITHMS

    assert len(ids) == len(ALGORITHMS)  # one registration line per algorithm
    assert provider.name() == "ChangeAnywhere"
    for alg in provider.algorithms():
        assert alg.shortHelpString() and alg.displayName()
        assert not alg.icon().isNull()


def test_generate_change_sample(processing_run, tiny_model_dir, houston_label_path, houston_image_path,
                                houston_changes_path, label_layer_info, tmp_path):
    out = {name: str(tmp_path / f"{name}.tif") for name in ("pre", "post", "pre_map", "post_map", "mask")}
    result = processing_run("changeanywhere:generatechangesample", {
        "SEMANTIC": str(houston_label_path), "IMAGE": str(houston_image_path),
        "CHANGES": str(houston_changes_path), "CLASS_FIELD": "target",
        "MODEL": str(tiny_model_dir), "STEPS": 2, "SEED": 11, "CORRELATION": 0.8, "DEVICE": 1, "GUIDANCE": 1.5,
        "OUTPUT_PRE_IMAGE": out["pre"], "OUTPUT_POST_IMAGE": out["post"], "OUTPUT_PRE_MAP": out["pre_map"],
        "OUTPUT_POST_MAP": out["post_map"], "OUTPUT_CHANGE_MASK": out["mask"],
        "OUTPUT_RECORD": str(tmp_path / "sample.json"),
    })
    assert result["DEVICE"] == "cpu" and result["SEED"] == 11 and result["CORRELATION_S"] == pytest.approx(0.8)
    assert 0 < result["CHANGED_FRACTION"] < 0.5
    for key, param in (("pre", "OUTPUT_PRE_IMAGE"), ("post", "OUTPUT_POST_IMAGE"), ("pre_map", "OUTPUT_PRE_MAP"),
                       ("post_map", "OUTPUT_POST_MAP"), ("mask", "OUTPUT_CHANGE_MASK")):
        assert result[param] == out[key]
        layer = assert_same_grid(out[key], label_layer_info)
        # RGB images: 3 bands; the sample has no nodata, so no mask (which QGIS would list as a fourth band)
        assert layer.bandCount() == (3 if key in ("pre", "post") else 1)
    row, col = BUILDING_CENTRE_PX
    assert value_at(out["pre_map"], row, col) == BUILDING
    assert value_at(out["post_map"], row, col) == WATER  # "a building becomes water"
    assert value_at(out["mask"], row, col) == 1
    record = json.loads((tmp_path / "sample.json").read_text())
    assert record["seed"] == 11 and record["device"] == "cpu" and record["guidance_scale"] == 1.5
    assert not list(tmp_path.glob(".*partial*"))


def test_simulate_from_a_memory_layer(processing_run, tiny_model_dir, houston_label_path, houston_changes_path,
                                      label_layer_info, tmp_path):
    """Any polygon source works: here a memory layer (never saved) with class names in a text field."""
    source = QgsVectorLayer(str(houston_changes_path), "changes", "ogr")
    memory = QgsVectorLayer("Polygon?crs=EPSG:4326&field=to:string", "drawn", "memory")
    features = []
    for feature in source.getFeatures():
        f = QgsFeature(memory.fields())
        f.setGeometry(feature.geometry())
        f["to"] = feature["target"]
        features.append(f)
    assert memory.dataProvider().addFeatures(features)[0]
    result = processing_run("changeanywhere:simulatechangeevents", {
        "SEMANTIC": str(houston_label_path), "CHANGES": memory, "CLASS_FIELD": "to", "MODEL": str(tiny_model_dir),
        "SEED": 5, "OUTPUT_POST_MAP": str(tmp_path / "post.tif"), "OUTPUT_CHANGE_MASK": str(tmp_path / "mask.tif"),
        "OUTPUT_CHANGES": str(tmp_path / "changes.gpkg"), "OUTPUT_EVENTS": str(tmp_path / "events.json"),
    })
    assert result["EVENTS"] == 2 and result["SEED"] == 5
    assert_same_grid(result["OUTPUT_POST_MAP"], label_layer_info)
    assert_same_grid(result["OUTPUT_CHANGE_MASK"], label_layer_info)
    changes = QgsVectorLayer(result["OUTPUT_CHANGES"], "changes", "ogr")
    assert changes.isValid() and changes.featureCount() > 0
    assert changes.crs().authid() == label_layer_info[0]
    assert label_layer_info[1].intersects(changes.extent())
    names = changes.fields().names()
    assert {"from_class", "to_class", "from_name", "to_name"} <= set(names)
    assert "water" in {f["to_name"] for f in changes.getFeatures()}
    assert json.loads((tmp_path / "events.json").read_text())["seed"] == 5


def test_simulate_random_events_to_temporary_outputs(processing_run, tiny_model_dir, houston_label_path, label_layer_info):
    result = processing_run("changeanywhere:simulatechangeevents", {
        "SEMANTIC": str(houston_label_path), "RANDOM_EVENTS": True, "MODEL": str(tiny_model_dir), "SEED": 2,
        "OUTPUT_POST_MAP": "TEMPORARY_OUTPUT", "OUTPUT_CHANGE_MASK": "TEMPORARY_OUTPUT", "OUTPUT_CHANGES": "TEMPORARY_OUTPUT",
    })
    assert result["EVENTS"] > 0 and result["CHANGED_FRACTION"] > 0
    assert_same_grid(result["OUTPUT_POST_MAP"], label_layer_info)
    layer = result["OUTPUT_CHANGES"]
    layer = layer if isinstance(layer, QgsVectorLayer) else QgsVectorLayer(layer, "changes", "ogr")
    assert layer.isValid() and layer.featureCount() > 0


def test_simulate_with_the_buildings_table_changes_buildings_alone(processing_run, tiny_model_dir, houston_label_path, tmp_path):
    """The built-in tables are listed in the dialog; `buildings only` builds and demolishes, nothing else changes."""
    from changeanywhere_qgis.engine.io import read_raster

    result = processing_run("changeanywhere:simulatechangeevents", {
        "SEMANTIC": str(houston_label_path), "RANDOM_EVENTS": True, "MODEL": str(tiny_model_dir), "SEED": 3, "TRANSITION_TABLE": 1,
        "OUTPUT_POST_MAP": str(tmp_path / "post.tif"), "OUTPUT_CHANGE_MASK": "TEMPORARY_OUTPUT", "OUTPUT_CHANGES": "TEMPORARY_OUTPUT",
    })
    assert result["EVENTS"] > 0
    pre, post = read_raster(houston_label_path)[0], read_raster(tmp_path / "post.tif")[0]
    changed = pre != post
    assert changed.any()
    building, demolished = 8, {1, 3}  # OpenEarthMap codes: bareland 1, developed space 3
    assert np.all((post[changed] == building) | ((pre[changed] == building) & np.isin(post[changed], list(demolished))))
    both = _run_bad(processing_run, {"SEMANTIC": str(houston_label_path), "MODEL": str(tiny_model_dir), "RANDOM_EVENTS": True,
                                     "TRANSITION_TABLE": 1, "TRANSITIONS": str(tmp_path / "mine.json")})
    assert "either a built-in transition table (buildings was chosen) or a transition table file" in both


def test_model_information(processing_run, tiny_model_dir, tmp_path):
    result = processing_run("changeanywhere:modelinformation", {
        "MODEL": str(tiny_model_dir), "DEVICE": 1, "OUTPUT": str(tmp_path / "model.json")})
    assert result["CLASS_COUNT"] == 8 and "6=water" in result["CLASSES"] and "8=building" in result["CLASSES"]
    assert result["DEVICE_USED"] == "cpu"
    report = json.loads((tmp_path / "model.json").read_text())
    assert set(report["file_sizes_bytes"]) == {"encoder", "decoder", "denoiser"}


def test_cancel_leaves_no_outputs(processing_run, tiny_model_dir, houston_label_path, houston_changes_path, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: feedback.cancel() if value > 5 else None)
    outputs = {p: str(tmp_path / f"{p}.tif") for p in ("OUTPUT_PRE_IMAGE", "OUTPUT_POST_IMAGE", "OUTPUT_PRE_MAP",
                                                        "OUTPUT_POST_MAP", "OUTPUT_CHANGE_MASK")}
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        processing_run("changeanywhere:generatechangesample", {
            "SEMANTIC": str(houston_label_path), "CHANGES": str(houston_changes_path), "CLASS_FIELD": "target",
            "MODEL": str(tiny_model_dir), "STEPS": 3, "SEED": 1, "DEVICE": 1, **outputs,
            "OUTPUT_RECORD": str(tmp_path / "sample.json"),
        }, feedback=feedback)
    assert feedback.isCanceled()
    assert list(tmp_path.iterdir()) == []


def _run_bad(processing_run, params):
    with pytest.raises(QgsProcessingException) as info:
        processing_run("changeanywhere:simulatechangeevents", {
            "OUTPUT_POST_MAP": "TEMPORARY_OUTPUT", "OUTPUT_CHANGE_MASK": "TEMPORARY_OUTPUT",
            "OUTPUT_CHANGES": "TEMPORARY_OUTPUT", **params})
    return str(info.value)


def test_bad_input_is_a_clear_processing_error(processing_run, tiny_model_dir, houston_label_path,
                                               houston_changes_path, houston_image_path):
    base = {"SEMANTIC": str(houston_label_path), "MODEL": str(tiny_model_dir)}
    assert "exactly one source" in _run_bad(processing_run, base)
    assert "CLASS_FIELD" in _run_bad(processing_run, {**base, "CHANGES": str(houston_changes_path)})
    # the engine's own checks, surfaced: an unknown class name in the polygons' field
    message = _run_bad(processing_run, {**base, "CHANGES": str(houston_changes_path), "CLASS_FIELD": "note"})
    assert "water" in message or "class" in message.lower()
    # an RGB photo is not a land-cover map: codes the model does not know
    message = _run_bad(processing_run, {**base, "SEMANTIC": str(houston_image_path), "RANDOM_EVENTS": True})
    assert "remap" in message
    assert "does not exist" in _run_bad(processing_run, {**base, "RANDOM_EVENTS": True, "MODEL": str(tiny_model_dir / "nope")})


def test_missing_libraries_name_the_install_command(processing_run, monkeypatch, houston_label_path, tiny_model_dir):
    from changeanywhere_qgis.processing import common

    monkeypatch.setattr(common, "missing_modules", lambda: ["onnxruntime", "rasterio"])
    with pytest.raises(QgsProcessingException) as info:
        processing_run("changeanywhere:modelinformation", {"MODEL": str(tiny_model_dir)})
    message = str(info.value)
    assert "-m pip install" in message and "onnxruntime" in message and "rasterio" in message


def test_runs_as_a_background_task_like_the_processing_dialog(provider, tiny_model_dir, houston_label_path,
                                                              houston_changes_path, tmp_path):
    """QGIS's dialog runs algorithms in a QThread (QgsProcessingAlgRunnerTask), where pyproj >= 3.7 crashes
    unless the engine runs in a Python thread (common.run_in_python_thread)."""
    from qgis.core import QgsApplication, QgsProcessingAlgRunnerTask
    from qgis_helpers import wait_until

    alg = QgsApplication.processingRegistry().createAlgorithmById("changeanywhere:simulatechangeevents")
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    params = {"SEMANTIC": str(houston_label_path), "CHANGES": str(houston_changes_path), "CLASS_FIELD": "target",
              "MODEL": str(tiny_model_dir), "SEED": 1, "OUTPUT_POST_MAP": str(tmp_path / "post.tif"),
              "OUTPUT_CHANGE_MASK": str(tmp_path / "mask.tif"), "OUTPUT_CHANGES": str(tmp_path / "changes.gpkg")}
    for _ in range(2):  # the second run reuses a pooled thread
        done = {}
        task = QgsProcessingAlgRunnerTask(alg, params, context, feedback)
        task.executed.connect(lambda ok, results: done.update(ok=ok, results=results))
        QgsApplication.taskManager().addTask(task)
        assert wait_until(lambda: "ok" in done, timeout=120)
        assert done["ok"] and done["results"]["EVENTS"] == 2


def test_a_broken_algorithm_module_is_skipped_not_fatal(qgis_app, qgis_processing, monkeypatch):
    from qgis.core import QgsApplication

    from changeanywhere_qgis.processing import provider as provider_module

    class Probe(provider_module.ChangeAnywhereProvider):
        def id(self):
            return "changeanywhere_probe"

    monkeypatch.setattr(provider_module, "ALGORITHMS", (".model_information:ModelInformation", ".no_such_module:Nothing"))
    probe = Probe()
    registry = QgsApplication.processingRegistry()
    assert registry.addProvider(probe)
    try:
        assert [a.name() for a in probe.algorithms()] == ["modelinformation"]
    finally:
        registry.removeProvider(probe)
