"""One change pair from two maps: the pre-event latent (encoded or generated), then the post-event
latent under latent mixing. Shared by ``pipeline.generate`` (rasters of any size, written window by
window) and the dataset's samples (tiles held in memory).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..progress import Progress
from .canvas import LatentCanvases
from .model_package import ModelPackage
from .pixels import to_model_range, to_uint8
from .sampler import KnownContent, SamplerSettings, decode, encode, latent_grid, sample
from .schedule import DEFAULT_ETA, DEFAULT_SAMPLER, DEFAULT_STEPS, check_sampler
from .style import Style, apply_style
from .tiling import TileGrid, canvas_size


# How the pre-event image of a pair with a real image is made: "real" is the user's image itself;
# "redrawn" is the autoencoder's copy of it (encoded, then decoded), so both dates come out of the same
# decoder and a change detector cannot tell them apart by the decoder's look alone.
# The default is the one the usefulness checks of docs/research/usefulness-checks.md favour. Check U1 (model 0.1.0) chose
# "redrawn" (zero-shot F1 0.285 against 0.257 on LEVIR-CD and WHU-CD); check U5 (model 0.3.0, whose copies are sharper)
# applied U3's rule and chose "real": 0.311 against 0.276. The choices keep their order, so that a Processing script's
# enum index means what it meant.
PRE_EVENT_CHOICES = ("redrawn", "real")
DEFAULT_PRE_EVENT = "real"

# The autoencoder's own tile (encoding the user's image, decoding every latent); None: the sampler's tile.
# Its GroupNorm normalises over the whole input, so a tile's copy depends on how much of the scene it sees:
# check A1 of docs/research/map-following-checks.md measures what a larger tile gives before this changes.
AUTOENCODER_TILE_PX: int | None = None


def check_pre_event(value: str) -> None:
    if value not in PRE_EVENT_CHOICES:
        raise InputError(f"Unknown pre-event image {value!r}. Choose 'real' (the image as given) or 'redrawn' "
                         "(the model's autoencoder's copy of it, the same look as the post-event image).")


def pre_event_kind(pre_event: str, with_image: bool) -> str:
    """What the pre-event image of a pair is: 'real', 'redrawn' or, without an image, 'generated' (from the map)."""
    return pre_event if with_image else "generated"


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
                         f"Leave it empty for the model's tile, or give e.g. {2 * pkg.tile_size}.")


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
         autoencoder_tile_px: int | None = None, canvas_folder: str | Path | None = None) -> Plan:
    """The canvas and tiles of one raster. A raster that fits in one tile is one tile (TileGrid never cuts it).

    ``autoencoder_tile_px`` None: ``AUTOENCODER_TILE_PX``; the autoencoder's tile is never smaller than the sampler's.
    ``canvas_folder`` (a large raster's scratch folder): the latent canvases are files there; None: arrays."""
    check_sampler(sampler, eta)
    autoencoder_tile_px = autoencoder_tile_px or AUTOENCODER_TILE_PX
    check_tile_size(pkg, tile_px)
    check_tile_size(pkg, autoencoder_tile_px, "autoencoder's tile size")
    tile = tile_px or pkg.tile_size
    overlap = pkg.tile_size // 4 if overlap_px is None else int(overlap_px)
    if not 0 <= overlap < tile:
        raise InputError(f"The tile overlap must be between 0 and {tile - 1} px (the tile is {tile} px), got {overlap}.")
    granule = max(pkg.multiple_of, pkg.downsample)
    canvas = (canvas_size(height, granule), canvas_size(width, granule))
    settings = SamplerSettings(steps, eta, overlap, batch_size, sampler, tile_px)
    grid = latent_grid(pkg, *canvas, overlap, tile_px)
    canvases = LatentCanvases(pkg.latent_channels, (grid.height, grid.width), canvas_folder)
    coder_tile = max(tile, autoencoder_tile_px or 0)
    if coder_tile == tile:
        return Plan(height, width, canvas, grid, settings, grid, settings, canvases)
    coder_batch = max(1, batch_size * tile * tile // (coder_tile * coder_tile))
    return Plan(height, width, canvas, grid, settings, latent_grid(pkg, *canvas, overlap, coder_tile),
                replace(settings, batch_size=coder_batch), canvases)


def latent_unchanged(mask: np.ndarray, f: int, shape: tuple[int, int], canvases: LatentCanvases | None = None) -> np.ndarray:
    """1 where a latent cell's whole f x f block is unchanged (a cell touching any change is free to change).

    With ``canvases`` on disk the plane is a file, filled a band of latent rows at a time."""
    h, w = shape
    if isinstance(mask, np.ndarray) and (canvases is None or not canvases.on_disk):
        padded = np.zeros((h * f, w * f), dtype=bool)
        padded[: mask.shape[0], : mask.shape[1]] = mask == 1
        changed = padded.reshape(h, f, w, f).any(axis=(1, 3))
        return (~changed).astype(np.float32)
    out = canvases.plane("unchanged") if canvases is not None else np.empty((h, w), dtype=np.float32)
    rows = max(1, (1 << 22) // max(w * f * f, 1))
    for top in range(0, h, rows):
        n = min(rows, h - top)
        padded = np.zeros((n * f, w * f), dtype=bool)
        band = mask[top * f : min((top + n) * f, mask.shape[0]), : mask.shape[1]]
        padded[: band.shape[0], : band.shape[1]] = band == 1
        out[top : top + n, :] = ~padded.reshape(n, f, w, f).any(axis=(1, 3))
    return out


def pre_event_latent(pkg: ModelPackage, p: Plan, pre_labels: np.ndarray | None, rng: np.random.Generator | None, progress: Progress,
                     read_image: Callable[[int, int, int, int], np.ndarray] | None = None) -> np.ndarray:
    """The user's image encoded, or, without one, an image generated from the pre-event map.

    ``read_image(row, col, height, width)`` gives uint8 [3, height, width] pixels of the padded canvas.
    """
    if read_image is not None:
        progress.stage("encoding the pre-event image")
        return encode(pkg, lambda *window: to_model_range(read_image(*window)), p.coder_grid, p.coder_settings, progress,
                      p.canvases)
    progress.stage("generating the pre-event image from the pre-event map")
    return sample(pkg, p.pad(pre_labels, pkg.scheme.nodata_code), p.grid, p.sampler, rng, progress, canvases=p.canvases)


def post_event_latent(pkg: ModelPackage, p: Plan, post_labels: np.ndarray, pre_latent: np.ndarray, mask: np.ndarray,
                      correlation: float, rng: np.random.Generator, progress: Progress,
                      stage: str = "generating the post-event image") -> np.ndarray:
    """The post-event latent: sampled under the post-event map, unchanged land mixed in from the pre-event latent."""
    progress.stage(stage)
    unchanged = latent_unchanged(mask, pkg.downsample, (p.grid.height, p.grid.width), p.canvases)
    known = KnownContent(pre_latent, unchanged, correlation)
    return sample(pkg, p.pad(post_labels, pkg.scheme.nodata_code), p.grid, p.sampler, rng, progress, known, p.canvases)


def decode_array(pkg: ModelPackage, p: Plan, latent: np.ndarray, progress: Progress,
                 colour: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Decode a latent canvas into a uint8 [3, H, W] array cropped to the raster (for tile-sized work); ``colour``: a
    style's colour match applied to the decoded pixels."""
    out = np.zeros((3, p.height, p.width), dtype=np.uint8)

    def keep(row: int, rgb: np.ndarray) -> None:
        rows = min(rgb.shape[1], p.height - row)
        if rows > 0:
            rgb = rgb[:, :rows, : p.width]
            out[:, row : row + rows] = to_uint8(colour(rgb) if colour else rgb)

    decode(pkg, latent, p.coder_grid, p.coder_settings, keep, progress)
    return out


def _image_reader(p: Plan, image: np.ndarray) -> Callable[[int, int, int, int], np.ndarray]:
    """uint8 windows of an in-memory image padded (mirrored) to the plan's canvas."""
    padded = np.pad(image, ((0, 0), (0, p.canvas[0] - p.height), (0, p.canvas[1] - p.width)), mode="symmetric")
    return lambda r, c, h, w: padded[:, r : r + h, c : c + w]


def autoencoder_copy(pkg: ModelPackage, image: np.ndarray, *, overlap_px: int | None = None, batch_size: int = 4,
                     tile_px: int | None = None, progress: Progress | None = None) -> np.ndarray:
    """The model's autoencoder's copy of a uint8 [3, H, W] image (encoded and decoded tile by tile, ``tile_px`` the
    autoencoder's tile, None: ``AUTOENCODER_TILE_PX``): exactly the pre-event image that ``pre_event="redrawn"``
    gives (the encoder draws no noise)."""
    progress = progress or Progress()
    p = plan(pkg, image.shape[1], image.shape[2], 1, DEFAULT_ETA, overlap_px, batch_size, autoencoder_tile_px=tile_px)
    progress.start(2 * p.coder_tiles)
    latent = pre_event_latent(pkg, p, None, None, progress, _image_reader(p, image))
    return decode_array(pkg, p, latent, progress)


def change_pair(pkg: ModelPackage, pre: np.ndarray, post: np.ndarray, mask: np.ndarray, correlation: float,
                rng: np.random.Generator, *, image: np.ndarray | None = None, steps: int = DEFAULT_STEPS, eta: float = DEFAULT_ETA,
                overlap_px: int | None = None, batch_size: int = 4, pre_event: str = DEFAULT_PRE_EVENT,
                sampler: str = DEFAULT_SAMPLER, tile_px: int | None = None, progress: Progress | None = None,
                style: Style | None = None) -> tuple[np.ndarray, np.ndarray]:
    """In memory: (t1, t2) uint8 [3, H, W] images for a pre/post map pair; ``image`` is an optional uint8 pre-event image.

    With an image, ``pre_event`` says whether t1 is the image itself ("real") or its autoencoder copy ("redrawn").
    ``style``: t2 takes a style image's appearance (style.py; the statistics over the valid pixels, ``mask`` != 255).
    """
    check_pre_event(pre_event)
    progress = progress or Progress()
    p = plan(pkg, *pre.shape, steps, eta, overlap_px, batch_size, sampler, tile_px)
    keep_real = image is not None and pre_event == "real"
    style_decodes = 1 if style is not None and style.strength > 0 else 0  # the colour match measures a decode of t2
    progress.start(p.work_units(steps, image is not None, redraw=not keep_real) + style_decodes * p.coder_tiles)
    pre_latent = pre_event_latent(pkg, p, pre, rng, progress, _image_reader(p, image) if image is not None else None)
    t1 = image if keep_real else decode_array(pkg, p, pre_latent, progress)
    post_latent = post_event_latent(pkg, p, post, pre_latent, mask, correlation, rng, progress)
    if style is None:
        return t1, decode_array(pkg, p, post_latent, progress)
    styled = apply_style(pkg, p, post_latent, style, progress, lambda row, n: mask[row : row + n] != 255)
    return t1, decode_array(pkg, p, styled.latent, progress, styled.colour)
