"""The post-event image's mode in QGIS (--post-event inpaint): the Processing algorithms' parameters and the dock's control
reach the engine, which records the mode in sample.json and in the dataset's spec."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from scipy import ndimage


def test_generate_algorithm_inpaints(processing_run, tiny_model_dir, houston_label_path, houston_image_path, tmp_path):
    from changeanywhere_qgis.engine.diffusion import DEFAULT_POST_EVENT, POST_EVENT_CHOICES
    from changeanywhere_qgis.processing.generate_sample import GenerateChangeSample

    alg = GenerateChangeSample()
    alg.initAlgorithm()
    param = alg.parameterDefinition("POST_EVENT")
    assert param.defaultValue() == POST_EVENT_CHOICES.index(DEFAULT_POST_EVENT) and len(param.options()) == len(POST_EVENT_CHOICES)
    processing_run("changeanywhere:generatechangesample", {
        "SEMANTIC": str(houston_label_path), "IMAGE": str(houston_image_path), "RANDOM_EVENTS": True,
        "MODEL": str(tiny_model_dir), "STEPS": 1, "SEED": 2, "DEVICE": 1, "POST_EVENT": POST_EVENT_CHOICES.index("inpaint"),
        "INPAINT_MARGIN": 16, "RERENDER_STRENGTH": 0.0,
        "OUTPUT_PRE_IMAGE": str(tmp_path / "pre.tif"), "OUTPUT_POST_IMAGE": str(tmp_path / "post.tif"),
        "OUTPUT_POST_MAP": str(tmp_path / "post_map.tif"), "OUTPUT_CHANGE_MASK": str(tmp_path / "mask.tif"),
        "OUTPUT_RECORD": str(tmp_path / "sample.json"),
    })
    record = json.loads((tmp_path / "sample.json").read_text())
    assert record["post_event"] == "inpaint" and record["inpaint"]["margin_px"] == 16
    with rasterio.open(tmp_path / "post.tif") as post, rasterio.open(houston_image_path) as image, \
            rasterio.open(tmp_path / "mask.tif") as mask:
        kept = ndimage.distance_transform_edt(mask.read(1) != 1) >= 16
        assert kept.any() and np.array_equal(post.read()[:, kept], image.read()[:3][:, kept])


def test_dataset_algorithm_records_the_mode(processing_run, tiny_model_dir, houston_label_path, houston_image_path, tmp_path):
    from changeanywhere_qgis.engine.diffusion import POST_EVENT_CHOICES

    processing_run("changeanywhere:generatechangedataset", {
        "SEMANTIC": [str(houston_label_path)], "IMAGES": [str(houston_image_path)], "COUNT": 2, "TILE": 64, "SEED": 4,
        "MODEL": str(tiny_model_dir), "STEPS": 1, "DEVICE": 1, "WORKERS": 1, "POST_EVENT": POST_EVENT_CHOICES.index("inpaint"),
        "INPAINT_MARGIN": 8, "RERENDER_STRENGTH": 0.25, "OUTPUT": str(tmp_path / "ds")})
    settings = json.loads((tmp_path / "ds" / "dataset.json").read_text())["settings"]
    assert (settings["post_event"], settings["inpaint_margin_px"], settings["rerender_strength"]) == ("inpaint", 8, 0.25)
    assert "--post-event inpaint --inpaint-margin 8 --rerender-strength 0.25" in (tmp_path / "ds" / "README.md").read_text()


def test_dock_choices_are_the_engines_and_reach_the_task(qgis_iface, qgis_canvas, clean_project, tiny_model_dir,
                                                         houston_label_path):
    from qgis.core import QgsGeometry, QgsPointXY, QgsRasterLayer

    from changeanywhere_qgis.engine.diffusion import DEFAULT_POST_EVENT, POST_EVENT_CHOICES
    from changeanywhere_qgis.gui import dock as dock_module
    from changeanywhere_qgis.gui.dock import POST_EVENTS, ChangeAnywhereDock

    assert tuple(key for key, _ in POST_EVENTS) == POST_EVENT_CHOICES and dock_module.DEFAULT_POST_EVENT == DEFAULT_POST_EVENT
    label = QgsRasterLayer(str(houston_label_path), "land cover", "gdal")
    clean_project.addMapLayers([label])
    qgis_canvas.setDestinationCrs(label.crs())
    dock = ChangeAnywhereDock(qgis_iface)
    try:
        dock.semantic_combo.setLayer(label)
        assert dock.post_event_combo.currentData() == DEFAULT_POST_EVENT
        dock.post_event_combo.setCurrentIndex(POST_EVENT_CHOICES.index("inpaint"))
        dock.model_widget.setFilePath(str(tiny_model_dir))
        dock.set_target_class("water")
        e = label.extent()
        ring = [QgsPointXY(e.xMinimum() + e.width() * f, e.yMinimum() + e.height() * g) for f, g in ((.4, .4), (.6, .4), (.6, .6), (.4, .6))]
        assert dock.add_polygon(QgsGeometry.fromPolygonXY([ring])) is not None
        task = dock.start_generation()
        assert task.settings_kwargs["post_event"] == "inpaint"
        task.cancel()
    finally:
        dock.cleanup()
        dock.deleteLater()


@pytest.mark.parametrize("algorithm", ["generatechangesample", "generatechangedataset"])
def test_a_series_is_drawn_in_full_and_the_log_says_so(processing_run, tiny_model_dir, houston_label_path, tmp_path, algorithm):
    """The enum always holds a mode, the pairs' default or a choice alike: with a series, "inpaint" is drawn in full
    (a series cannot be inpainted yet) rather than refused, and the log says so."""
    from qgis.core import QgsProcessingFeedback

    from changeanywhere_qgis.engine.diffusion import POST_EVENT_CHOICES, SERIES_IN_FULL

    common = {"MODEL": str(tiny_model_dir), "STEPS": 1, "DEVICE": 1, "DATES": 3, "POST_EVENT": POST_EVENT_CHOICES.index("inpaint")}
    if algorithm == "generatechangedataset":
        params = {"SEMANTIC": [str(houston_label_path)], "COUNT": 2, "TILE": 64, "SEED": 4, "WORKERS": 1, "OUTPUT": str(tmp_path / "ds")}
    else:
        params = {"SEMANTIC": str(houston_label_path), "RANDOM_EVENTS": True, "SEED": 2, "OUTPUT_SERIES": str(tmp_path / "series"),
                  **{name: str(tmp_path / f"{name}.tif") for name in ("OUTPUT_PRE_IMAGE", "OUTPUT_POST_IMAGE", "OUTPUT_POST_MAP",
                                                                       "OUTPUT_CHANGE_MASK")}}
    feedback = QgsProcessingFeedback()
    processing_run(f"changeanywhere:{algorithm}", {**common, **params}, feedback=feedback)  # not refused
    assert SERIES_IN_FULL in feedback.textLog()
    if algorithm == "generatechangedataset":
        settings = json.loads((tmp_path / "ds" / "dataset.json").read_text())["settings"]
        assert settings["dates"] == 3 and "post_event" not in settings  # full: the spec of before the option
    else:
        assert (tmp_path / "series" / "t2_image.tif").exists()


def test_the_processing_default_is_the_engine_s(qgis_app, flip_default):
    """Should the usefulness test make "inpaint" the default, both algorithms offer it first; a pair keeps the choice
    without a word, a series is drawn in full with one."""
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    from changeanywhere_qgis.engine.diffusion import POST_EVENT_CHOICES, SERIES_IN_FULL
    from changeanywhere_qgis.processing.alg_dataset import GenerateChangeDataset
    from changeanywhere_qgis.processing.generate_sample import GenerateChangeSample

    flip_default("DEFAULT_POST_EVENT", "inpaint")
    for alg in (GenerateChangeSample(), GenerateChangeDataset()):
        alg.initAlgorithm()
        default = alg.parameterDefinition("POST_EVENT").defaultValue()
        assert POST_EVENT_CHOICES[default] == "inpaint"
        params = {"POST_EVENT": default, "INPAINT_MARGIN": 16, "RERENDER_STRENGTH": 0.0}
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        assert alg.post_event_settings(params, context, feedback, 2)["post_event"] == "inpaint"
        assert SERIES_IN_FULL not in feedback.textLog()
        assert alg.post_event_settings(params, context, feedback, 3)["post_event"] == "full"
        assert SERIES_IN_FULL in feedback.textLog()


def test_the_dock_draws_a_series_in_full(qgis_iface, clean_project, flip_default):
    """The dock's combo under an "inpaint" default (its literal flipped with the engine's): a series shows "full" and
    rests, saying why; at 2 dates the pairs' mode comes back."""
    from changeanywhere_qgis.gui.dock import ChangeAnywhereDock

    flip_default("DEFAULT_POST_EVENT", "inpaint")
    dock = ChangeAnywhereDock(qgis_iface)
    try:
        combo = dock.post_event_combo
        assert combo.currentData() == "inpaint" and combo.isEnabled()
        dock.series.dates_spin.setValue(3)
        assert combo.currentData() == "full" and not combo.isEnabled() and "drawn in full" in combo.toolTip()
        dock.series.dates_spin.setValue(4)
        assert combo.currentData() == "full" and not combo.isEnabled()
        dock.series.dates_spin.setValue(2)
        assert combo.currentData() == "inpaint" and combo.isEnabled() and "drawn in full" not in combo.toolTip()
    finally:
        dock.cleanup()
        dock.deleteLater()
