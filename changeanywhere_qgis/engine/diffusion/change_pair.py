"""One change pair from two maps: the pre-event latent (encoded or generated), then the post-event
latent under latent mixing. Shared by ``pipeline.generate`` (rasters of any size, written window by
window) and the dataset's samples (tiles held in memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import InputError
from ..progress import Progress
from .model_package import ModelPackage
from .pixels import to_model_range, to_uint8
from .sampler import KnownContent, SamplerSettings, decode, encode, latent_grid, sample
from .schedule import DEFAULT_ETA
from .tiling import TileGrid, canvas_size


@dataclass(frozen=True)
class Plan:
    """The padded canvas and tile grid for one raster."""

    height: int  # the raster's size, pixels
    width: int
    canvas: tuple[int, int]  # padded to the model's size granule
    grid: TileGrid  # latent tiles
    sampler: SamplerSettings

    @property
    def tiles(self) -> int:
        return len(self.grid.tiles)

    def pad(self, labels: np.ndarray, fill: int) -> np.ndarray:
        return np.pad(labels, ((0, self.canvas[0] - self.height), (0, self.canvas[1] - self.width)), constant_values=fill)

    def work_units(self, steps: int, with_image: bool) -> int:
        """Network calls (tiles) a change pair costs, for progress."""
        n = self.tiles
        return n * steps * (1 if with_image else 2) + n * (2 if not with_image else 1) + (n if with_image else 0)


def plan(pkg: ModelPackage, height: int, width: int, steps: int, eta: float = DEFAULT_ETA,
         overlap_px: int | None = None, batch_size: int = 4) -> Plan:
    overlap = pkg.tile_size // 4 if overlap_px is None else int(overlap_px)
    if not 0 <= overlap < pkg.tile_size:
        raise InputError(f"The tile overlap must be between 0 and {pkg.tile_size - 1} px (the model's tile is {pkg.tile_size} px), got {overlap}.")
    granule = max(pkg.multiple_of, pkg.downsample)
    canvas = (canvas_size(height, granule), canvas_size(width, granule))
    grid = latent_grid(pkg, *canvas, overlap)
    return Plan(height, width, canvas, grid, SamplerSettings(steps, eta, overlap, batch_size))


def latent_unchanged(mask: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    """1 where a latent cell's whole f x f block is unchanged (a cell touching any change is free to change)."""
    h, w = shape
    padded = np.zeros((h * f, w * f), dtype=bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask == 1
    changed = padded.reshape(h, f, w, f).any(axis=(1, 3))
    return (~changed).astype(np.float32)


def pre_event_latent(pkg: ModelPackage, p: Plan, pre_labels: np.ndarray, rng: np.random.Generator, progress: Progress,
                     read_image: Callable[[int, int, int, int], np.ndarray] | None = None) -> np.ndarray:
    """The user's image encoded, or, without one, an image generated from the pre-event map.

    ``read_image(row, col, height, width)`` gives uint8 [3, height, width] pixels of the padded canvas.
    """
    if read_image is not None:
        progress.stage("encoding the pre-event image")
        return encode(pkg, lambda *window: to_model_range(read_image(*window)), p.grid, p.sampler, progress)
    progress.stage("generating the pre-event image from the pre-event map")
    return sample(pkg, p.pad(pre_labels, pkg.scheme.nodata_code), p.grid, p.sampler, rng, progress)


def post_event_latent(pkg: ModelPackage, p: Plan, post_labels: np.ndarray, pre_latent: np.ndarray, mask: np.ndarray,
                      correlation: float, rng: np.random.Generator, progress: Progress) -> np.ndarray:
    """The post-event latent: sampled under the post-event map, unchanged land mixed in from the pre-event latent."""
    progress.stage("generating the post-event image")
    known = KnownContent(pre_latent, latent_unchanged(mask, pkg.downsample, (p.grid.height, p.grid.width)), correlation)
    return sample(pkg, p.pad(post_labels, pkg.scheme.nodata_code), p.grid, p.sampler, rng, progress, known)


def decode_array(pkg: ModelPackage, p: Plan, latent: np.ndarray, progress: Progress) -> np.ndarray:
    """Decode a latent canvas into a uint8 [3, H, W] array cropped to the raster (for tile-sized work)."""
    out = np.zeros((3, p.height, p.width), dtype=np.uint8)

    def keep(row: int, rgb: np.ndarray) -> None:
        rows = min(rgb.shape[1], p.height - row)
        if rows > 0:
            out[:, row : row + rows] = to_uint8(rgb[:, :rows, : p.width])

    decode(pkg, latent, p.grid, p.sampler, keep, progress)
    return out


def change_pair(pkg: ModelPackage, pre: np.ndarray, post: np.ndarray, mask: np.ndarray, correlation: float,
                rng: np.random.Generator, *, image: np.ndarray | None = None, steps: int = 50, eta: float = DEFAULT_ETA,
                overlap_px: int | None = None, batch_size: int = 4, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """In memory: (t1, t2) uint8 [3, H, W] images for a pre/post map pair; ``image`` is an optional uint8 pre-event image."""
    progress = progress or Progress()
    p = plan(pkg, *pre.shape, steps, eta, overlap_px, batch_size)
    progress.start(p.work_units(steps, image is not None))
    reader = None
    if image is not None:
        padded = np.pad(image, ((0, 0), (0, p.canvas[0] - p.height), (0, p.canvas[1] - p.width)), mode="symmetric")
        reader = lambda r, c, h, w: padded[:, r : r + h, c : c + w]  # noqa: E731
    pre_latent = pre_event_latent(pkg, p, pre, rng, progress, reader)
    t1 = image if image is not None else decode_array(pkg, p, pre_latent, progress)
    post_latent = post_event_latent(pkg, p, post, pre_latent, mask, correlation, rng, progress)
    return t1, decode_array(pkg, p, post_latent, progress)
