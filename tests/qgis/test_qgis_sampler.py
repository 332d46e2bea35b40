"""The sampler choice in QGIS: the Processing algorithms' parameters and the dock's control reach the engine."""

from __future__ import annotations

import json


def test_generate_algorithm_runs_the_chosen_sampler_and_tile(processing_run, tiny_model_dir, houston_label_path, tmp_path):
    from changeanywhere_qgis.engine.diffusion import DEFAULT_SAMPLER, SAMPLERS
    from changeanywhere_qgis.processing.generate_sample import GenerateChangeSample

    alg = GenerateChangeSample()
    alg.initAlgorithm()
    param = alg.parameterDefinition("SAMPLER")
    assert param.defaultValue() == SAMPLERS.index(DEFAULT_SAMPLER) and len(param.options()) == len(SAMPLERS)
    assert alg.parameterDefinition("SAMPLER_TILE").defaultValue() is None
    processing_run("changeanywhere:generatechangesample", {
        "SEMANTIC": str(houston_label_path), "RANDOM_EVENTS": True, "MODEL": str(tiny_model_dir), "STEPS": 2, "SEED": 2,
        "DEVICE": 1, "SAMPLER": SAMPLERS.index("dpmpp-2m"), "SAMPLER_TILE": 128,
        "OUTPUT_PRE_IMAGE": str(tmp_path / "pre.tif"), "OUTPUT_POST_IMAGE": str(tmp_path / "post.tif"),
        "OUTPUT_POST_MAP": str(tmp_path / "post_map.tif"), "OUTPUT_CHANGE_MASK": str(tmp_path / "mask.tif"),
        "OUTPUT_RECORD": str(tmp_path / "sample.json"),
    })
    record = json.loads((tmp_path / "sample.json").read_text())
    assert (record["sampler"], record["tile_size_px"]) == ("dpmpp-2m", 128)


def test_dataset_algorithm_has_the_same_choice(provider):
    from changeanywhere_qgis.engine.diffusion import SAMPLERS

    alg = provider.algorithm("generatechangedataset")
    assert len(alg.parameterDefinition("SAMPLER").options()) == len(SAMPLERS)
    assert alg.parameterDefinition("SAMPLER_TILE") is not None


def test_dock_sampler_reaches_the_task(qgis_iface, qgis_canvas, clean_project, tiny_model_dir, houston_label_path):
    from qgis.core import QgsGeometry, QgsPointXY, QgsRasterLayer

    from changeanywhere_qgis.engine.diffusion import SAMPLERS
    from changeanywhere_qgis.gui.dock import ChangeAnywhereDock

    label = QgsRasterLayer(str(houston_label_path), "land cover", "gdal")
    clean_project.addMapLayers([label])
    qgis_canvas.setDestinationCrs(label.crs())
    dock = ChangeAnywhereDock(qgis_iface)
    try:
        dock.semantic_combo.setLayer(label)
        dock.model_widget.setFilePath(str(tiny_model_dir))
        dock.set_target_class("water")
        dock.eta_spin.setValue(0.5)
        dock.sampler_combo.setCurrentIndex(SAMPLERS.index("dpmpp-2m"))
        e = label.extent()
        ring = [QgsPointXY(e.xMinimum() + e.width() * f, e.yMinimum() + e.height() * g) for f, g in ((.4, .4), (.6, .4), (.6, .6), (.4, .6))]
        assert dock.add_polygon(QgsGeometry.fromPolygonXY([ring])) is not None
        task = dock.start_generation()
        assert (task.settings_kwargs["sampler"], task.settings_kwargs["eta"]) == ("dpmpp-2m", 0.0)  # eta is DDIM's alone
        task.cancel()
    finally:
        dock.cleanup()
        dock.deleteLater()
