"""Outputs look right when they are added: a real sample from the engine (tiny model), each output styled
as the dock adds it and rendered by QGIS's own renderer, compared with the file's pixels."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from qgis.core import QgsMultiBandColorRenderer, QgsPalettedRasterRenderer, QgsRasterLayer

from changeanywhere_qgis.engine.diffusion import read_manifest
from changeanywhere_qgis.engine.pipeline import OUTPUTS, ChangeSpec, GenerateSettings, generate
from changeanywhere_qgis.processing.layer_styles import OUTPUT_KINDS, style_output


@pytest.fixture(scope="module")
def sample(tmp_path_factory, tiny_model_dir, houston_label_path, houston_image_path):
    out = tmp_path_factory.mktemp("styled") / "sample"
    result = generate(houston_label_path, out, ChangeSpec(random=True), image=houston_image_path, model=tiny_model_dir,
                      settings=GenerateSettings(steps=2, batch_size=8, threads=2, device="cpu", seed=11))
    return result["outputs"]


@pytest.fixture(scope="module")
def classes(tiny_model_dir):
    return read_manifest(tiny_model_dir, verify_hashes=False)["classes"]


def _rendered(layer) -> np.ndarray:
    """The layer's renderer output at the file's own size: (rows, cols, 4) of R, G, B, A."""
    block = layer.renderer().block(1, layer.extent(), layer.width(), layer.height())
    image = block.image()
    rows, cols = image.height(), image.width()
    rgba = np.zeros((rows, cols, 4), dtype=np.uint8)
    for r in range(0, rows, 7):  # every 7th row and column: 5 000+ pixels, quick
        for c in range(0, cols, 7):
            color = image.pixelColor(c, r)
            rgba[r, c] = (color.red(), color.green(), color.blue(), color.alpha())
    return rgba


@pytest.fixture()
def stretching_user():
    """A user whose QGIS stretches multi-band byte rasters by default (Settings ▸ Rendering ▸ Contrast
    enhancement); QGIS's factory setting happens to show byte RGB as it is."""
    from qgis.core import QgsSettings

    settings, key = QgsSettings(), "Raster/defaultContrastEnhancementAlgorithm/multiBandSingleByte"
    before = settings.value(key)
    settings.setValue(key, "StretchToMinimumMaximum")
    yield
    if before is None:
        settings.remove(key)
    else:
        settings.setValue(key, before)


@pytest.mark.parametrize("name", ["t1_image.tif", "t2_image.tif"])
def test_images_open_in_true_colour(qgis_app, sample, classes, stretching_user, name):
    path = sample[name]
    with rasterio.open(path) as ds:
        assert ds.count == 3
        bands, valid = ds.read(), ds.dataset_mask() > 0
    layer = QgsRasterLayer(str(path), name, "gdal")
    assert layer.isValid()
    style_output(layer, name, classes)
    renderer = layer.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    # QGIS shows the file's per-dataset mask as a band after the colours: transparency, not a colour
    assert renderer.alphaBand() == (4 if layer.bandCount() == 4 else -1)
    rgba = _rendered(layer)
    rows, cols = np.meshgrid(np.arange(0, bands.shape[1], 7), np.arange(0, bands.shape[2], 7), indexing="ij")
    inside = valid[rows, cols]
    assert inside.mean() > 0.5
    for band in range(3):  # the written bytes, not a stretch of them
        assert np.array_equal(rgba[rows, cols, band][inside], bands[band][rows, cols][inside]), f"band {band + 1}"
    assert (rgba[rows, cols, 3][inside] == 255).all()
    if (~inside).any():
        assert (rgba[rows, cols, 3][~inside] == 0).all()  # nodata stays see-through


def test_maps_get_the_class_palette_and_the_mask_black_and_white(qgis_app, sample, classes):
    for name in ("t1_semantic.tif", "t2_semantic.tif"):
        layer = QgsRasterLayer(str(sample[name]), name, "gdal")
        style_output(layer, name, classes)
        renderer = layer.renderer()
        assert isinstance(renderer, QgsPalettedRasterRenderer)
        colours = {c.value: c.color.getRgb()[:3] for c in renderer.classes()}
        assert colours == {c["code"]: tuple(c["color"]) for c in classes}
    layer = QgsRasterLayer(str(sample["change_mask.tif"]), "mask", "gdal")
    style_output(layer, "change_mask.tif", classes)
    assert {c.value: c.color.name() for c in layer.renderer().classes()} == {0: "#000000", 1: "#ffffff"}


def test_every_raster_output_has_a_style():
    assert set(OUTPUT_KINDS) == {name for name in OUTPUTS if name.endswith(".tif")}


def test_algorithm_outputs_are_styled_when_processing_loads_them(provider, clean_project, tmp_path, tiny_model_dir,
                                                                 houston_label_path, houston_changes_path, classes):
    """As the toolbox does with "Open output file after running algorithm": the outputs are flagged to be
    loaded into the project, and their post-processor styles them as the dock would."""
    from qgis.core import (QgsApplication, QgsProcessingContext, QgsProcessingFeedback,
                           QgsProcessingOutputLayerDefinition)

    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    context.setProject(clean_project)
    outputs = {"OUTPUT_POST_MAP": tmp_path / "post_map.tif", "OUTPUT_CHANGE_MASK": tmp_path / "mask.tif"}
    params = {"SEMANTIC": str(houston_label_path), "CHANGES": str(houston_changes_path), "CLASS_FIELD": "target",
              "MODEL": str(tiny_model_dir), "SEED": 1, "OUTPUT_CHANGES": str(tmp_path / "changes.gpkg"),
              **{k: QgsProcessingOutputLayerDefinition(str(v), clean_project) for k, v in outputs.items()}}
    alg = QgsApplication.processingRegistry().createAlgorithmById("changeanywhere:simulatechangeevents")
    results, ok = alg.run(params, context, feedback)
    assert ok, results
    for key, kind in (("OUTPUT_POST_MAP", "map"), ("OUTPUT_CHANGE_MASK", "mask")):
        path = str(outputs[key])
        assert context.willLoadLayerOnCompletion(path)
        processor = context.layerToLoadOnCompletionDetails(path).postProcessor()
        assert processor is not None, f"{key}: no style on load"
        layer = QgsRasterLayer(path, key, "gdal")
        processor.postProcessLayer(layer, context, feedback)
        renderer = layer.renderer()
        assert isinstance(renderer, QgsPalettedRasterRenderer)
        if kind == "map":
            assert {c.value: c.color.getRgb()[:3] for c in renderer.classes()} == {c["code"]: tuple(c["color"]) for c in classes}
        else:
            assert {c.value: c.color.name() for c in renderer.classes()} == {0: "#000000", 1: "#ffffff"}
