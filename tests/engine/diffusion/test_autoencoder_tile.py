"""The autoencoder's own tile: encode and decode may use tiles larger than the denoiser's (check A1 of
docs/research/map-following-checks.md), with a batch of the same pixels, and everything else stays the denoiser's."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import rasterio

from changeanywhere_qgis.engine.diffusion import autoencoder_copy, plan, to_model_range, to_uint8
from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.pipeline import ChangeSpec, GenerateSettings, generate

RASTER_PLAN = importlib.import_module("changeanywhere_qgis.engine.diffusion.raster_plan")


def _image(path, size):
    with rasterio.open(path) as ds:
        return np.ascontiguousarray(ds.read()[:3, :size, :size])


def test_an_autoencoder_tile_as_large_as_the_image_copies_it_whole(pkg, houston_image_path):
    image = _image(houston_image_path, 2 * pkg.tile_size)
    whole = to_uint8(pkg.decode(pkg.encode(to_model_range(image[None])))[0])
    assert np.array_equal(autoencoder_copy(pkg, image, tile_px=2 * pkg.tile_size), whole)
    # at the model's tile the same image is cut into overlapping tiles, and GroupNorm sees less of it
    assert not np.array_equal(autoencoder_copy(pkg, image, tile_px=pkg.tile_size), whole)


def test_the_plan_keeps_the_denoisers_tiles_and_the_pixels_of_a_batch(pkg):
    f, tile = pkg.downsample, pkg.tile_size
    p = plan(pkg, 5 * tile, 5 * tile, 10, batch_size=4, autoencoder_tile_px=2 * tile)
    assert p.grid.tile == tile // f and p.sampler.batch_size == 4
    assert p.coder_grid.tile == 2 * tile // f and p.coder_settings.batch_size == 1
    assert (p.coder_grid.height, p.coder_grid.width) == (p.grid.height, p.grid.width)
    assert p.coder_tiles < p.tiles
    # progress counts each pass in its own tiles: sampling in the denoiser's, encoding and decoding in the autoencoder's
    assert p.work_units(10, with_image=True, redraw=True) == p.tiles * 10 + 3 * p.coder_tiles
    same = plan(pkg, 5 * tile, 5 * tile, 10, batch_size=4, autoencoder_tile_px=tile)
    assert same.coder_grid == same.grid and same.coder_settings == same.sampler
    # never smaller than the sampler's tile
    larger = plan(pkg, 5 * tile, 5 * tile, 10, tile_px=2 * tile, autoencoder_tile_px=tile)
    assert larger.coder_grid.tile == larger.grid.tile == 2 * tile // f


@pytest.mark.parametrize("tile_px", [32, 68], ids=["below-the-model-tile", "off-the-granule"])  # tiny model: 64 px, granule 8
def test_a_bad_autoencoder_tile_is_refused_by_name(pkg, tile_px):
    with pytest.raises(InputError, match="autoencoder's tile size"):
        plan(pkg, 300, 300, 10, autoencoder_tile_px=tile_px)


def test_generate_encodes_and_decodes_in_the_autoencoders_tiles(tmp_path, monkeypatch, pkg, tiny_model_dir,
                                                                houston_label_path, houston_image_path):
    monkeypatch.setattr(RASTER_PLAN, "AUTOENCODER_TILE_PX", 2 * pkg.tile_size)
    generate(houston_label_path, tmp_path / "out", ChangeSpec(random=True), image=houston_image_path, model=tiny_model_dir,
             settings=GenerateSettings(steps=2, seed=4, device="cpu", threads=2, pre_event="redrawn"))
    with rasterio.open(houston_image_path) as ds:
        image = ds.read()[:3]
    with rasterio.open(tmp_path / "out" / "t1_image.tif") as ds:
        t1 = ds.read()
    assert np.array_equal(t1, autoencoder_copy(pkg, image, tile_px=2 * pkg.tile_size))
    assert not np.array_equal(t1, autoencoder_copy(pkg, image, tile_px=pkg.tile_size))
    record = json.loads((tmp_path / "out" / "sample.json").read_text())
    assert record["autoencoder_tile_px"] == 2 * pkg.tile_size and record["tile_size_px"] == pkg.tile_size
