"""Latent mixing in QGIS (issue #34): the Processing algorithms' advanced parameter and the dock's control reach the
engine; every earlier parameter keeps its name and its enum indices."""

from __future__ import annotations

import json


def _is_advanced(param) -> bool:
    from changeanywhere_qgis.processing.qgis_compat import FLAG_ADVANCED

    return bool(param.flags() & FLAG_ADVANCED)


def test_generate_algorithm_runs_the_chosen_mixing(processing_run, tiny_model_dir, houston_label_path, tmp_path):
    from changeanywhere_qgis.engine.diffusion import DEFAULT_MIXING, MIXINGS, SAMPLERS
    from changeanywhere_qgis.processing.generate_sample import GenerateChangeSample

    alg = GenerateChangeSample()
    alg.initAlgorithm()
    param = alg.parameterDefinition("MIXING")
    assert param.defaultValue() == MIXINGS.index(DEFAULT_MIXING) and len(param.options()) == len(MIXINGS)
    assert _is_advanced(param) and param.description().startswith("Latent mixing")
    assert [o.split(":")[0] for o in param.options()] == list(MIXINGS)
    assert not _is_advanced(alg.parameterDefinition("SAMPLER")) and len(alg.parameterDefinition("SAMPLER").options()) == len(SAMPLERS)
    records = {}
    for name, extra in (("default", {}), ("latent", {"MIXING": MIXINGS.index("latent")})):
        processing_run("changeanywhere:generatechangesample", {
            "SEMANTIC": str(houston_label_path), "RANDOM_EVENTS": True, "MODEL": str(tiny_model_dir), "STEPS": 2, "SEED": 2,
            "DEVICE": 1, **extra,
            "OUTPUT_PRE_IMAGE": str(tmp_path / f"{name}_pre.tif"), "OUTPUT_POST_IMAGE": str(tmp_path / f"{name}_post.tif"),
            "OUTPUT_POST_MAP": str(tmp_path / f"{name}_post_map.tif"), "OUTPUT_CHANGE_MASK": str(tmp_path / f"{name}_mask.tif"),
            "OUTPUT_RECORD": str(tmp_path / f"{name}.json"),
        })
        records[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert (records["default"]["mixing"], records["latent"]["mixing"]) == ("prediction", "latent")


def test_dataset_algorithm_passes_the_mixing(processing_run, provider, tiny_model_dir, houston_label_path, tmp_path):
    from changeanywhere_qgis.engine.diffusion import MIXINGS

    alg = provider.algorithm("generatechangedataset")
    assert len(alg.parameterDefinition("MIXING").options()) == len(MIXINGS) and _is_advanced(alg.parameterDefinition("MIXING"))
    out = tmp_path / "ds"
    processing_run("changeanywhere:generatechangedataset", {
        "SEMANTIC": [str(houston_label_path)], "COUNT": 2, "TILE": 64, "MODEL": str(tiny_model_dir), "STEPS": 1, "DEVICE": 1,
        "WORKERS": 1, "MIXING": MIXINGS.index("latent"), "OUTPUT": str(out)})
    assert "mixing" not in json.loads((out / "dataset.json").read_text())["settings"]  # latent: the spec of before the option
    assert "--mixing latent" in (out / "README.md").read_text()


def test_dock_mixing_reaches_the_task(qgis_iface, qgis_canvas, clean_project, tiny_model_dir, houston_label_path):
    from qgis.core import QgsGeometry, QgsPointXY, QgsRasterLayer

    from changeanywhere_qgis.engine.diffusion import DEFAULT_MIXING, MIXINGS
    from changeanywhere_qgis.gui.dock import MIXINGS as DOCK_MIXINGS
    from changeanywhere_qgis.gui.dock import ChangeAnywhereDock

    assert tuple(key for key, _ in DOCK_MIXINGS) == MIXINGS
    label = QgsRasterLayer(str(houston_label_path), "land cover", "gdal")
    clean_project.addMapLayers([label])
    qgis_canvas.setDestinationCrs(label.crs())
    dock = ChangeAnywhereDock(qgis_iface)
    try:
        assert dock.mixing_combo.currentData() == DEFAULT_MIXING
        dock.semantic_combo.setLayer(label)
        dock.model_widget.setFilePath(str(tiny_model_dir))
        dock.set_target_class("water")
        dock.mixing_combo.setCurrentIndex(MIXINGS.index("latent"))
        e = label.extent()
        ring = [QgsPointXY(e.xMinimum() + e.width() * f, e.yMinimum() + e.height() * g) for f, g in ((.4, .4), (.6, .4), (.6, .6), (.4, .6))]
        assert dock.add_polygon(QgsGeometry.fromPolygonXY([ring])) is not None
        task = dock.start_generation()
        assert task.settings_kwargs["mixing"] == "latent" and task.settings_kwargs["sampler"] == "ddim"
        task.cancel()
    finally:
        dock.cleanup()
        dock.deleteLater()
