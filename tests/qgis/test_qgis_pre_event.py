"""The pre-event choice in QGIS: the Processing algorithms' parameter and the dock's control reach the engine."""

from __future__ import annotations

import json

import numpy as np
import rasterio


def test_generate_algorithm_redraws_the_pre_event_image(processing_run, tiny_model_dir, houston_label_path, houston_image_path,
                                                        tmp_path):
    from changeanywhere_qgis.engine.diffusion import DEFAULT_PRE_EVENT, PRE_EVENT_CHOICES
    from changeanywhere_qgis.processing.generate_sample import GenerateChangeSample

    alg = GenerateChangeSample()
    alg.initAlgorithm()
    param = alg.parameterDefinition("PRE_EVENT")
    assert param.defaultValue() == PRE_EVENT_CHOICES.index(DEFAULT_PRE_EVENT) and len(param.options()) == len(PRE_EVENT_CHOICES)
    processing_run("changeanywhere:generatechangesample", {
        "SEMANTIC": str(houston_label_path), "IMAGE": str(houston_image_path), "RANDOM_EVENTS": True,
        "MODEL": str(tiny_model_dir), "STEPS": 1, "SEED": 2, "DEVICE": 1, "PRE_EVENT": PRE_EVENT_CHOICES.index("redrawn"),
        "OUTPUT_PRE_IMAGE": str(tmp_path / "pre.tif"), "OUTPUT_POST_IMAGE": str(tmp_path / "post.tif"),
        "OUTPUT_POST_MAP": str(tmp_path / "post_map.tif"), "OUTPUT_CHANGE_MASK": str(tmp_path / "mask.tif"),
        "OUTPUT_RECORD": str(tmp_path / "sample.json"),
    })
    assert json.loads((tmp_path / "sample.json").read_text())["pre_event"] == "redrawn"
    with rasterio.open(tmp_path / "pre.tif") as pre, rasterio.open(houston_image_path) as image:
        assert not np.array_equal(pre.read(), image.read())


def test_dataset_algorithm_has_the_same_choice(provider):
    from changeanywhere_qgis.engine.diffusion import PRE_EVENT_CHOICES

    alg = provider.algorithm("generatechangedataset")
    assert len(alg.parameterDefinition("PRE_EVENT").options()) == len(PRE_EVENT_CHOICES)


def test_dock_choices_are_the_engines_and_reach_the_task(qgis_iface, qgis_canvas, clean_project, tiny_model_dir,
                                                         houston_label_path, houston_image_path):
    from qgis.core import QgsGeometry, QgsPointXY, QgsRasterLayer

    from changeanywhere_qgis.engine.diffusion import DEFAULT_PRE_EVENT, PRE_EVENT_CHOICES
    from changeanywhere_qgis.gui import dock as dock_module
    from changeanywhere_qgis.gui.dock import PRE_EVENTS, ChangeAnywhereDock

    assert tuple(key for key, _ in PRE_EVENTS) == PRE_EVENT_CHOICES and dock_module.DEFAULT_PRE_EVENT == DEFAULT_PRE_EVENT
    label = QgsRasterLayer(str(houston_label_path), "land cover", "gdal")
    image = QgsRasterLayer(str(houston_image_path), "image", "gdal")
    clean_project.addMapLayers([image, label])
    qgis_canvas.setDestinationCrs(label.crs())  # polygons below are drawn in the layer's own coordinates
    dock = ChangeAnywhereDock(qgis_iface)
    try:
        dock.semantic_combo.setLayer(label)
        dock.image_combo.setLayer(None)
        assert not dock.pre_event_combo.isEnabled()  # without an image there is nothing to choose
        dock.image_combo.setLayer(image)
        assert dock.pre_event_combo.isEnabled() and dock.pre_event_combo.currentData() == DEFAULT_PRE_EVENT
        dock.pre_event_combo.setCurrentIndex(PRE_EVENT_CHOICES.index("redrawn"))
        dock.model_widget.setFilePath(str(tiny_model_dir))
        dock.set_target_class("water")
        e = label.extent()
        ring = [QgsPointXY(e.xMinimum() + e.width() * f, e.yMinimum() + e.height() * g) for f, g in ((.4, .4), (.6, .4), (.6, .6), (.4, .6))]
        assert dock.add_polygon(QgsGeometry.fromPolygonXY([ring])) is not None
        task = dock.start_generation()
        assert task.settings_kwargs["pre_event"] == "redrawn"
        task.cancel()
    finally:
        dock.cleanup()
        dock.deleteLater()
