"""Inputs that used to get a misleading message or none: an image given as the land-cover map, JPEG land cover,
grids a rounding apart, RGBA images, manifests with words for numbers. Real GeoTIFFs made from the bundled sample."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from changeanywhere_qgis.engine.diffusion import read_manifest
from changeanywhere_qgis.engine.errors import InputError, ModelError
from changeanywhere_qgis.engine.io import ImageSource, RasterGrid, read_semantic
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate


def test_an_rgb_image_given_as_the_land_cover_map_is_named_as_one(houston_image_path, oem_scheme):
    with pytest.raises(InputError, match="has 3 bands and looks like an image") as caught:
        read_semantic(houston_image_path, oem_scheme)
    assert "codes the model" not in str(caught.value)  # not a list of 250 'unknown codes'


def test_jpeg_land_cover_says_lossy_compression_changed_the_codes(houston_label_path, oem_scheme, tmp_path):
    with rasterio.open(houston_label_path) as src:
        labels, crs, transform = src.read(1), src.crs, src.transform
    jpeg = tmp_path / "landcover.jpg"
    with rasterio.open(jpeg, "w", driver="JPEG", width=labels.shape[1], height=labels.shape[0], count=1, dtype="uint8",
                       crs=crs, transform=transform, QUALITY=75) as dst:
        dst.write(labels, 1)
    with pytest.raises(InputError, match="JPEG-compressed: lossy compression changed its class codes"):
        read_semantic(jpeg, oem_scheme)


def _shifted_copy(src_path, dst_path, shift_px: float) -> None:
    with rasterio.open(src_path) as src:
        profile, data = src.profile, src.read()
    t = profile["transform"]
    profile["transform"] = rasterio.Affine(t.a, t.b, t.c + shift_px * t.a, t.d, t.e, t.f)
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data)


def test_grids_a_rounding_apart_are_one_grid_and_a_real_shift_is_reported_in_pixels(houston_label_path, houston_image_path, tmp_path):
    with rasterio.open(houston_label_path) as src:
        grid = RasterGrid.of(src)
    rounded = tmp_path / "rounded.tif"
    _shifted_copy(houston_image_path, rounded, 1e-6)  # what a reprojection's float rounding leaves
    ImageSource(rounded, grid).close()
    shifted = tmp_path / "shifted.tif"
    _shifted_copy(houston_image_path, shifted, 0.5)
    with pytest.raises(InputError, match=r"pixels shifted by up to 0\.5 px"):
        ImageSource(shifted, grid)


def test_transparent_pixels_of_an_rgba_image_are_nodata(tiny_model_dir, tmp_path, houston_label_path, houston_image_path):
    with rasterio.open(houston_image_path) as src:
        profile, rgb = src.profile, src.read()
    alpha = np.full(rgb.shape[1:], 255, dtype=np.uint8)
    alpha[:128, :128] = 0  # a corner outside the image's footprint
    rgba = tmp_path / "rgba.tif"
    with rasterio.open(rgba, "w", **{**profile, "count": 4, "photometric": "RGB", "alpha": "YES"}) as dst:
        dst.write(np.concatenate([rgb, alpha[None]]))
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generate(houston_label_path, out, ChangeSpec(random=True), image=rgba, model=tiny_model_dir,
                 settings=GenerateSettings(steps=1, seed=3, device="cpu", threads=2))
    with rasterio.open(houston_label_path) as src:
        newly_nodata = int((src.read(1)[:128, :128] != 0).sum())  # 0 is the map's own nodata
    assert any(f"alpha band: its {newly_nodata} fully transparent" in str(w.message) for w in caught), [str(w.message) for w in caught]
    with rasterio.open(out / "change_mask.tif") as ds:
        mask = ds.read(1)
    with rasterio.open(out / "t1_semantic.tif") as ds:
        pre = ds.read(1)
    with rasterio.open(out / "t1_image.tif") as ds:
        image_mask = ds.dataset_mask()
    assert (mask[:128, :128] == 255).all() and (pre[:128, :128] == 0).all()
    assert (image_mask[:128, :128] == 0).all() and (image_mask[200:, 200:] == 255).all()


@pytest.fixture()
def model_copy(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


@pytest.mark.parametrize("section,key,value", [("tile", "size", "big"), ("tile", "size", 0), ("latent", "downsample", 2.5),
                                               ("tile", "multiple_of", None), ("diffusion", "beta_end", "0.02")])
def test_a_manifest_number_that_is_not_one_is_named(model_copy, section, key, value):
    manifest = json.loads((model_copy / "model.json").read_text())
    manifest[section][key] = value
    (model_copy / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=rf"{section}\.{key} must be a (whole|positive) number.*got {value!r}".replace("(", "(", 1)):
        read_manifest(model_copy)


def test_the_model_json_file_given_for_the_folder_names_the_folder(tiny_model_dir):
    with pytest.raises(ModelError, match="takes the model package folder") as caught:
        read_manifest(tiny_model_dir / "model.json")
    assert str(tiny_model_dir) in str(caught.value)
