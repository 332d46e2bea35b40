"""The real data in data/: made by data/import_sources.py from the datasets' own files, and usable as it is.

The original colour masks in tests/data/sources/ are copied unchanged from the Dubai and FLAIR releases; the
import script must turn them into exactly the labels committed in data/train, and those labels, with their
built-in remaps, must run through the tool (the FLAIR patches in their own CRS, Lambert-93).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from changeanywhere_qgis.engine.pipeline import ChangeSpec, simulate

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
SOURCES = REPO / "tests" / "data" / "sources"


@pytest.fixture(scope="module")
def import_sources():
    spec = importlib.util.spec_from_file_location("import_sources", DATA / "import_sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dubai_labels_are_the_converted_masks(import_sources):
    codes = import_sources.dubai_label(SOURCES / "dubai" / "tile_2_image_part_003.png")
    committed = np.asarray(Image.open(DATA / "train" / "dubai" / "labels" / "tile2_part003.png"))
    np.testing.assert_array_equal(codes, committed)
    image = Image.open(DATA / "train" / "dubai" / "images" / "tile2_part003.jpg")
    assert (image.height, image.width) == committed.shape


def test_the_adaptation_area_is_a_converted_crop_that_no_model_trained_on(import_sources):
    """data/adapt/ holds the model card's adaptation area (check A2): a crop of a Dubai tile kept out of data/train."""
    tile, part = import_sources.ADAPT_SOURCE
    assert int(tile.rsplit("_", 1)[1]) not in import_sources.DUBAI_TILES
    assert not list((DATA / "train" / "dubai" / "images").glob(f"{tile.replace('_', '')}_*"))
    (r0, r1), (c0, c1) = import_sources.ADAPT_WINDOW
    codes = import_sources.dubai_label(SOURCES / "dubai" / f"{tile}_{part}.png")[r0:r1, c0:c1]
    stem = DATA / "adapt" / f"dubai_{tile.replace('_', '')}_part{part.rsplit('_', 1)[1]}_r{r0}_c{c0}"
    np.testing.assert_array_equal(np.asarray(Image.open(f"{stem}_label.png")), codes)
    assert set(np.unique(codes)) == {1, 2, 3, 4, 5}  # every Dubai class, nothing unlabelled
    image = Image.open(f"{stem}_image.png")
    assert image.mode == "RGB" and (image.height, image.width) == codes.shape == (512, 512)


def test_flair_labels_are_the_converted_masks_on_their_lambert93_grid(import_sources):
    codes, transform = import_sources.flair_label(SOURCES / "flair" / "MSK_067998.png", SOURCES / "flair" / "IMG_067998.json")
    with rasterio.open(DATA / "train" / "flair" / "labels" / "IMG_067998.tif") as src:
        np.testing.assert_array_equal(src.read(1), codes)
        assert src.crs.to_epsg() == 2154 and src.transform == transform
        assert src.res == (0.2, 0.2)
    with rasterio.open(DATA / "train" / "flair" / "images" / "IMG_067998.tif") as img:
        assert img.count == 3 and img.transform == transform and img.crs.to_epsg() == 2154
    origin = json.loads((SOURCES / "flair" / "IMG_067998.json").read_text())["origin"]
    assert (transform.c, transform.f) == tuple(origin)


def test_change_pairs_are_complete_triplets():
    for name, count in (("levir-cd", 15), ("whu-cd", 12)):
        names = {part: sorted(p.name for p in (DATA / name / part).glob("*.png")) for part in ("A", "B", "label")}
        assert names["A"] == names["B"] == names["label"] and len(names["A"]) == count, name
        label = np.asarray(Image.open(DATA / name / "label" / names["label"][0]))
        assert label.shape == (256, 256) and set(np.unique(label)) <= {0, 255}


@pytest.mark.parametrize("semantic, remap", [
    (DATA / "train" / "flair" / "labels" / "IMG_067998.tif", "flair"),
    (DATA / "train" / "dubai" / "labels" / "tile2_part003.png", "dubai"),
])
def test_the_remapped_labels_run_through_simulate(tmp_path, tiny_model_dir, semantic, remap):
    result = simulate(semantic, tmp_path / "out", ChangeSpec(random=True), model=tiny_model_dir, remap=remap, seed=3)
    assert 0 < result["changed_fraction"] < 1
    with rasterio.open(tmp_path / "out" / "t2_semantic.tif") as out, rasterio.open(semantic) as src:
        assert out.transform == src.transform and out.crs == src.crs
        assert set(np.unique(out.read(1))) <= set(range(9))
