"""The denoiser's precision in QGIS (issue #34): the Processing algorithms' advanced parameter and the dock's control
reach the engine, which runs a package's int8 denoiser or refuses with the command that makes one; every earlier
parameter keeps its name and its enum indices."""

from __future__ import annotations

import json

import pytest

QUANTIZE = "python -m model_export.export.quantize --package"


def _is_advanced(param) -> bool:
    from changeanywhere_qgis.processing.qgis_compat import FLAG_ADVANCED

    return bool(param.flags() & FLAG_ADVANCED)


def _generate_parameters(semantic, model, tmp_path, name: str, **extra) -> dict:
    return {"SEMANTIC": str(semantic), "RANDOM_EVENTS": True, "MODEL": str(model), "STEPS": 2, "SEED": 2, "DEVICE": 1, **extra,
            "OUTPUT_PRE_IMAGE": str(tmp_path / f"{name}_pre.tif"), "OUTPUT_POST_IMAGE": str(tmp_path / f"{name}_post.tif"),
            "OUTPUT_POST_MAP": str(tmp_path / f"{name}_post_map.tif"), "OUTPUT_CHANGE_MASK": str(tmp_path / f"{name}_mask.tif"),
            "OUTPUT_RECORD": str(tmp_path / f"{name}.json")}


def test_generate_algorithm_runs_the_chosen_precision(processing_run, int8_model_dir, tiny_model_dir, houston_label_path,
                                                      tmp_path):
    from qgis.core import QgsProcessingException

    from changeanywhere_qgis.engine.diffusion import DEFAULT_PRECISION, PRECISIONS
    from changeanywhere_qgis.processing.common import DEVICE_CHOICES
    from changeanywhere_qgis.processing.generate_sample import GenerateChangeSample

    alg = GenerateChangeSample()
    alg.initAlgorithm()
    param = alg.parameterDefinition("PRECISION")
    assert param.defaultValue() == PRECISIONS.index(DEFAULT_PRECISION) and len(param.options()) == len(PRECISIONS)
    assert _is_advanced(param) and param.description() == "Denoiser precision"
    assert [o.split(":")[0] for o in param.options()] == list(PRECISIONS)
    assert len(alg.parameterDefinition("DEVICE").options()) == len(DEVICE_CHOICES)  # the device's indices stay
    records = {}
    for name, extra in (("default", {}), ("int8", {"PRECISION": PRECISIONS.index("int8")})):
        processing_run("changeanywhere:generatechangesample", _generate_parameters(houston_label_path, int8_model_dir, tmp_path,
                                                                                   name, **extra))
        records[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert (records["default"]["precision"], records["int8"]["precision"]) == ("float32", "int8")
    with pytest.raises(QgsProcessingException, match=rf"has no int8 denoiser.*{QUANTIZE} "):
        processing_run("changeanywhere:generatechangesample", _generate_parameters(
            houston_label_path, tiny_model_dir, tmp_path, "refused", PRECISION=PRECISIONS.index("int8")))
    assert not (tmp_path / "refused.json").exists()


def test_dataset_algorithm_passes_the_precision(processing_run, provider, int8_model_dir, houston_label_path, tmp_path):
    from changeanywhere_qgis.engine.diffusion import PRECISIONS

    alg = provider.algorithm("generatechangedataset")
    param = alg.parameterDefinition("PRECISION")
    assert len(param.options()) == len(PRECISIONS) and _is_advanced(param) and param.description() == "Denoiser precision"
    out = tmp_path / "ds"
    processing_run("changeanywhere:generatechangedataset", {
        "SEMANTIC": [str(houston_label_path)], "COUNT": 2, "TILE": 64, "MODEL": str(int8_model_dir), "STEPS": 1, "DEVICE": 1,
        "WORKERS": 1, "PRECISION": PRECISIONS.index("int8"), "OUTPUT": str(out)})
    assert json.loads((out / "dataset.json").read_text())["settings"]["precision"] == "int8"
    assert "--precision int8" in (out / "README.md").read_text()


def test_dock_precision_reaches_the_task(qgis_iface, qgis_canvas, clean_project, int8_model_dir, houston_label_path):
    from qgis.core import QgsGeometry, QgsPointXY, QgsRasterLayer

    from changeanywhere_qgis.engine.diffusion import DEFAULT_PRECISION, PRECISIONS
    from changeanywhere_qgis.gui import dock as dock_module
    from changeanywhere_qgis.gui.dock import ChangeAnywhereDock

    assert tuple(key for key, _ in dock_module.PRECISIONS) == PRECISIONS and dock_module.DEFAULT_PRECISION == DEFAULT_PRECISION
    label = QgsRasterLayer(str(houston_label_path), "land cover", "gdal")
    clean_project.addMapLayers([label])
    qgis_canvas.setDestinationCrs(label.crs())
    dock = ChangeAnywhereDock(qgis_iface)
    try:
        assert dock.precision_combo.currentData() == DEFAULT_PRECISION
        dock.semantic_combo.setLayer(label)
        dock.model_widget.setFilePath(str(int8_model_dir))
        dock.set_target_class("water")
        dock.precision_combo.setCurrentIndex(PRECISIONS.index("int8"))
        e = label.extent()
        ring = [QgsPointXY(e.xMinimum() + e.width() * f, e.yMinimum() + e.height() * g) for f, g in ((.4, .4), (.6, .4), (.6, .6), (.4, .6))]
        assert dock.add_polygon(QgsGeometry.fromPolygonXY([ring])) is not None
        task = dock.start_generation()
        assert task.settings_kwargs["precision"] == "int8" and task.settings_kwargs["device"] == dock.device_combo.currentData()
        task.cancel()
    finally:
        dock.cleanup()
        dock.deleteLater()
