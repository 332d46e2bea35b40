"""The diffusion tests' shared parts: the tiny model's real onnxruntime sessions, a recorder of its denoiser's calls,
and one model tile of the real Houston sample with its image's latent."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import rasterio

from changeanywhere_qgis.engine.diffusion import SamplerSettings, encode, latent_grid, load_model_package, to_model_range
from changeanywhere_qgis.engine.progress import Progress


class DenoiserRecorder:
    """The real model package, recording every denoiser call's latent input, timestep and output (of the batch's first
    tile: on a one-tile canvas, the whole canvas)."""

    def __init__(self, pkg):
        self.pkg, self.calls = pkg, []

    def __getattr__(self, name):
        return getattr(self.pkg, name)

    def denoise_with(self, latent, timestep, condition):
        out = self.pkg.denoise_with(latent, timestep, condition)
        self.calls.append((latent[0].copy(), int(timestep[0]), out[0].copy()))
        return out


class OneTile(NamedTuple):
    labels: np.ndarray
    grid: object  # the latent TileGrid
    pre: np.ndarray  # the pre-event latent
    overlap_px: int


@pytest.fixture(scope="session")
def denoiser_recorder():
    """The class that wraps a model package and records its denoiser's calls (``denoiser_recorder(pkg).calls``)."""
    return DenoiserRecorder


@pytest.fixture(scope="module")
def pkg(tiny_model_dir):
    return load_model_package(tiny_model_dir, "cpu", threads=2)  # two threads: the same sums on any machine


@pytest.fixture(scope="module")
def one_tile(pkg, houston_image_path, houston_label_path):
    """One model tile of real land cover and its real image's latent, on a grid of one tile (so a DenoiserRecorder
    sees the whole canvas)."""
    n, overlap = pkg.tile_size, 16
    with rasterio.open(houston_image_path) as ds:
        image = to_model_range(ds.read(window=((0, n), (0, n))))
    with rasterio.open(houston_label_path) as ds:
        labels = ds.read(1, window=((0, n), (0, n)))
    grid = latent_grid(pkg, n, n, overlap)
    assert len(grid.tiles) == 1
    pre = encode(pkg, lambda r, c, h, w: image[:, r : r + h, c : c + w], grid, SamplerSettings(tile_overlap_px=overlap),
                 Progress())
    return OneTile(labels, grid, pre, overlap)
