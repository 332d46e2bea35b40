"""The padded canvas and tile grids of one raster (a change pair's, a style image's), and an in-memory image read on it.

Its own module because both the change pair (change_pair.py) and the style image's encoding (style.py) plan a raster,
and the change pair applies the style: neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from .canvas import LatentCanvases
from .model_package import ModelPackage
from .sampler import DEFAULT_MIXING, SamplerSettings, check_mixing, latent_grid
from .schedule import DEFAULT_ETA, DEFAULT_SAMPLER, check_sampler
from .tiling import TileGrid, canvas_size

# The autoencoder's own tile (encoding the user's image, decoding every latent); None: the sampler's tile.
# Its GroupNorm normalises over the whole input, so a tile's copy depends on how much of the scene it sees:
# check A1 of docs/research/map-following-checks.md measures what a larger tile gives before this changes.
AUTOENCODER_TILE_PX: int | None = None



@dataclass(frozen=True)
class Plan:
    """The padded canvas and tile grid for one raster."""

    height: int  # the raster's size, pixels
    width: int
    canvas: tuple[int, int]  # padded to the model's size granule
    grid: TileGrid  # latent tiles of the denoiser
    sampler: SamplerSettings
    coder_grid: TileGrid  # latent tiles of the autoencoder's passes (encode, decode): at least the denoiser's
    coder_settings: SamplerSettings  # the sampler's, with a batch of as many pixels as a batch of denoiser tiles
    canvases: LatentCanvases  # the latent canvases: in memory, or a large raster's files

    @property
    def tiles(self) -> int:
        return len(self.grid.tiles)

    @property
    def coder_tiles(self) -> int:
        return len(self.coder_grid.tiles)

    def pad(self, labels, fill: int):
        """The map padded to the canvas: an array, or for a large map's ScratchRaster a window reader (the sampler reads tiles)."""
        if isinstance(labels, np.ndarray):
            return np.pad(labels, ((0, self.canvas[0] - self.height), (0, self.canvas[1] - self.width)), constant_values=fill)
        return _PaddedMap(labels, self.canvas, fill)

    def work_units(self, steps: int, with_image: bool, redraw: bool = False) -> int:
        """Network calls (tiles) a change pair costs, for progress: sampling, decoding, encoding the image."""
        n, c = self.tiles, self.coder_tiles
        decodes = 1 if with_image and not redraw else 2
        return n * steps * (1 if with_image else 2) + c * decodes + (c if with_image else 0)


# The sampler's tile when a run asks for none, in pixels; None: the model's own tile. Check S2 of
# docs/research/map-following-checks.md decides it: larger tiles mean fewer network calls per megapixel.
DEFAULT_TILE_PX: int | None = None


def resolve_tile_px(model_tile: int, granule: int, tile_px: int | None) -> int | None:
    """The sampler's tile of a run that asked for ``tile_px`` (None: ``DEFAULT_TILE_PX``), in the form every lower layer
    and every dataset spec reads: None for the model's own tile, else the pixels.

    The default is raised to a multiple of the model's size granule, and a model whose tile is not smaller than the
    default keeps its own. An explicit tile is returned as it is (check_tile_size judges it), but the model's own tile
    given by number is None: a dataset begun with no tile and resumed with the model's named is the same dataset."""
    if tile_px is None:
        if DEFAULT_TILE_PX is None or DEFAULT_TILE_PX <= model_tile:
            return None
        tile_px = -(-DEFAULT_TILE_PX // granule) * granule
    return None if tile_px == model_tile else tile_px


def default_tile_text() -> str:
    """The default tile in words, for help texts."""
    return "the model's tile" if DEFAULT_TILE_PX is None else f"{DEFAULT_TILE_PX} px, or the model's tile where that is larger"


def check_tile_size(pkg: ModelPackage, tile_px: int | None, what: str = "tile size") -> None:
    """The sampler's tile (None: the model's): a whole multiple of the package's size granule, at least the model's tile.

    Larger tiles mean fewer network calls per megapixel; the denoiser's convolutions take any multiple of the
    granule, but what it has not seen in training (a mid-block attention spans the whole tile) is a question of
    quality, not of shape: docs/research/map-following-checks.md (check S1) measures it before any default changes.
    """
    if tile_px is None:
        return
    granule = max(pkg.multiple_of, pkg.downsample)
    if isinstance(tile_px, bool) or not isinstance(tile_px, (int, np.integer)) or tile_px < pkg.tile_size or tile_px % granule:
        raise InputError(f"The {what} must be a whole number of pixels, a multiple of {granule} (the model's size granule) "
                         f"and at least the model's tile of {pkg.tile_size} px, got {tile_px!r}. "
                         f"Leave it empty for the default ({default_tile_text()}), or give e.g. {2 * pkg.tile_size}.")


class _PaddedMap:
    """``map[rows, cols]`` of a large map on the padded canvas: the part beyond the raster reads as ``fill``."""

    def __init__(self, labels, canvas: tuple[int, int], fill: int) -> None:
        self.labels, self.shape, self.fill = labels, canvas, fill

    def __getitem__(self, key) -> np.ndarray:
        rows, cols = key
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        out = np.full((r1 - r0, c1 - c0), self.fill, dtype=np.uint8)
        h, w = self.labels.shape
        if r0 < h and c0 < w:
            out[: min(r1, h) - r0, : min(c1, w) - c0] = self.labels[r0 : min(r1, h), c0 : min(c1, w)]
        return out


def plan(pkg: ModelPackage, height: int, width: int, steps: int, eta: float = DEFAULT_ETA,
         overlap_px: int | None = None, batch_size: int = 4, sampler: str = DEFAULT_SAMPLER, tile_px: int | None = None,
         autoencoder_tile_px: int | None = None, canvas_folder: str | Path | None = None, mixing: str = DEFAULT_MIXING) -> Plan:
    """The canvas and tiles of one raster. A raster that fits in one tile is one tile (TileGrid never cuts it).

    ``autoencoder_tile_px`` None: ``AUTOENCODER_TILE_PX``; the autoencoder's tile is never smaller than the sampler's.
    ``canvas_folder`` (a large raster's scratch folder): the latent canvases are files there; None: arrays.
    ``mixing``: how latent mixing holds the unchanged cells (sampler.MIXINGS)."""
    check_sampler(sampler, eta)
    check_mixing(mixing)
    autoencoder_tile_px = autoencoder_tile_px or AUTOENCODER_TILE_PX
    check_tile_size(pkg, tile_px)
    check_tile_size(pkg, autoencoder_tile_px, "autoencoder's tile size")
    tile = tile_px or pkg.tile_size
    overlap = pkg.tile_size // 4 if overlap_px is None else int(overlap_px)
    if not 0 <= overlap < tile:
        raise InputError(f"The tile overlap must be between 0 and {tile - 1} px (the tile is {tile} px), got {overlap}.")
    granule = max(pkg.multiple_of, pkg.downsample)
    canvas = (canvas_size(height, granule), canvas_size(width, granule))
    settings = SamplerSettings(steps, eta, overlap, batch_size, sampler, tile_px, mixing)
    grid = latent_grid(pkg, *canvas, overlap, tile_px)
    canvases = LatentCanvases(pkg.latent_channels, (grid.height, grid.width), canvas_folder)
    coder_tile = max(tile, autoencoder_tile_px or 0)
    if coder_tile == tile:
        return Plan(height, width, canvas, grid, settings, grid, settings, canvases)
    coder_batch = max(1, batch_size * tile * tile // (coder_tile * coder_tile))
    return Plan(height, width, canvas, grid, settings, latent_grid(pkg, *canvas, overlap, coder_tile),
                replace(settings, batch_size=coder_batch), canvases)


def image_reader(p: Plan, image: np.ndarray) -> Callable[[int, int, int, int], np.ndarray]:
    """uint8 windows of an in-memory image padded (mirrored) to the plan's canvas."""
    padded = np.pad(image, ((0, 0), (0, p.canvas[0] - p.height), (0, p.canvas[1] - p.width)), mode="symmetric")
    return lambda r, c, h, w: padded[:, r : r + h, c : c + w]
