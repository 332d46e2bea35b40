"""Tiled encoding, sampling (DDIM or DPM-Solver++ 2M) with latent mixing, and tiled decoding, in numpy.

Memory is bounded by the tile batch plus latent-resolution canvases (1/16 of the pixels for a
factor-4 model): the full-resolution one-hot map and image are never built for the whole raster.

Latent mixing (ChangeAnywhere): for the first floor(S * s) of the S reverse steps, the unchanged
area of the latent is replaced by the pre-event latent noised to the current timestep, so the
unchanged land is held to the pre-event image while the changed land follows its new class; the
remaining steps run freely so the whole image settles into one consistent scene. With the multistep
solver, the cells replaced at a step take that step's first-order update (schedule.DPMSolverPP2M.step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..progress import Progress
from .model_package import ModelPackage
from .schedule import DEFAULT_ETA, DEFAULT_SAMPLER, DEFAULT_STEPS, DPMSolverPP2M
from .tiling import TileGrid


@dataclass(frozen=True)
class SamplerSettings:
    steps: int = DEFAULT_STEPS
    eta: float = DEFAULT_ETA
    tile_overlap_px: int = 64  # pixels; the latent grid uses tile_overlap_px // downsample
    batch_size: int = 4
    sampler: str = DEFAULT_SAMPLER  # "ddim" or "dpmpp-2m" (schedule.SAMPLERS)
    tile_px: int | None = None  # the sampler's tile, pixels; None: the model's own tile


@dataclass(frozen=True)
class KnownContent:
    """What latent mixing holds fixed: the pre-event latent, where the land is unchanged."""

    latent: np.ndarray  # [C, h, w] pre-event latent
    unchanged: np.ndarray  # [h, w] float32, 1 unchanged, 0 changed
    correlation: float  # s in [0, 1]: the fraction of steps that mix

    def mixing_steps(self, steps: int) -> int:
        return int(math.floor(steps * self.correlation))


def latent_grid(model: ModelPackage, height_px: int, width_px: int, overlap_px: int, tile_px: int | None = None) -> TileGrid:
    """The latent tiles of a padded canvas: ``tile_px`` (None: the model's tile), cut only where the canvas is larger."""
    f = model.downsample
    return TileGrid(height_px // f, width_px // f, (tile_px or model.tile_size) // f, overlap_px // f)


def encode(
    model: ModelPackage, read_image: Callable[[int, int, int, int], np.ndarray], grid: TileGrid,
    settings: SamplerSettings, progress: Progress,
) -> np.ndarray:
    """Encode an image tile by tile into one latent canvas, fusing overlaps.

    ``read_image(row, col, height, width)`` returns float32 [3, height, width] in [-1, 1] (pixels).
    """
    f = model.downsample
    acc = np.zeros((model.latent_channels, grid.height, grid.width), dtype=np.float32)
    w = grid.weight()
    for batch in grid.batches(settings.batch_size):
        pixels = np.stack([read_image(t.row * f, t.col * f, t.size_y * f, t.size_x * f) for t in batch])
        latents = model.encode(pixels)
        for t, z in zip(batch, latents):
            acc[(slice(None), *t.slices)] += w * z
        progress.advance(len(batch))
    return acc / grid.weight_sum()


def sample(
    model: ModelPackage,
    semantic: np.ndarray,
    grid: TileGrid,
    settings: SamplerSettings,
    rng: np.random.Generator,
    progress: Progress,
    known: KnownContent | None = None,
) -> np.ndarray:
    """Generate the latent of an image that obeys ``semantic`` (uint8 codes over the padded canvas, pixels).

    Every step, each tile's prediction is computed and the overlapping predictions are averaged
    with feathered weights before one solver update of the whole canvas (MultiDiffusion).
    """
    f = model.downsample
    schedule, scheme = model.schedule, model.scheme
    shape = (model.latent_channels, grid.height, grid.width)
    weight, weight_sum = grid.weight(), grid.weight_sum()
    timesteps = schedule.timesteps(settings.steps)
    mixing = known.mixing_steps(settings.steps) if known is not None else 0
    multistep = DPMSolverPP2M(schedule, settings.steps) if settings.sampler == "dpmpp-2m" else None

    batches = grid.batches(settings.batch_size)
    # On the GPU each batch's conditioning is uploaded once for all steps; on the CPU it is
    # rebuilt per step, so memory stays bounded by the tile batch.
    kept = {} if model.bind_device is not None else None

    def condition(index: int, batch):
        if kept is not None and index in kept:
            return kept[index]
        made = model.condition(np.concatenate([scheme.one_hot(semantic[tile.scaled(f).slices]) for tile in batch]))
        if kept is not None:
            kept[index] = made
        return made

    x = rng.standard_normal(shape, dtype=np.float32)
    for i, t in enumerate(timesteps):
        if i < mixing:
            noised = schedule.q_sample(known.latent, int(t), rng.standard_normal(shape, dtype=np.float32))
            x = known.unchanged * noised + (1.0 - known.unchanged) * x
        prediction = np.zeros(shape, dtype=np.float32)
        for index, batch in enumerate(batches):
            latents = np.stack([x[(slice(None), *tile.slices)] for tile in batch])
            out = model.denoise_with(latents, np.full(len(batch), t, dtype=np.int64), condition(index, batch))
            for tile, p in zip(batch, out):
                prediction[(slice(None), *tile.slices)] += weight * p
            progress.advance(len(batch))
        prediction /= weight_sum
        if multistep is not None:
            x = multistep.step(i, x, prediction, fresh=known.unchanged if i < mixing else None)
            continue
        t_prev = schedule.previous_timestep(int(t), settings.steps)
        noise = rng.standard_normal(shape, dtype=np.float32) if settings.eta > 0 else None
        x = schedule.ddim_step(x, int(t), t_prev, prediction, eta=settings.eta, noise=noise)
    return x


def decode(
    model: ModelPackage, latent: np.ndarray, grid: TileGrid, settings: SamplerSettings,
    write_rows: Callable[[int, np.ndarray], None], progress: Progress,
) -> None:
    """Decode the latent canvas tile by tile, blending overlaps, and hand finished rows to ``write_rows``.

    Only one band of tile rows is held at full resolution at a time: ``write_rows(row_px, rgb)``
    receives float32 [3, rows, width_px] in [-1, 1], top to bottom.
    """
    f = model.downsample
    weight = np.kron(grid.weight(), np.ones((f, f), dtype=np.float32))
    width_px = grid.width * f
    by_row: dict[int, list] = {}
    for tile in grid.tiles:
        by_row.setdefault(tile.row, []).append(tile)
    rows = sorted(by_row)
    band_top, acc, wsum = 0, None, None
    for index, row in enumerate(rows):
        tiles = by_row[row]
        bottom = (row + tiles[0].size_y) * f
        if acc is None:
            acc = np.zeros((3, bottom - band_top, width_px), dtype=np.float32)
            wsum = np.zeros((bottom - band_top, width_px), dtype=np.float32)
        elif bottom - band_top > acc.shape[1]:
            grow = bottom - band_top - acc.shape[1]
            acc = np.concatenate([acc, np.zeros((3, grow, width_px), np.float32)], axis=1)
            wsum = np.concatenate([wsum, np.zeros((grow, width_px), np.float32)], axis=0)
        for start in range(0, len(tiles), settings.batch_size):
            batch = tiles[start : start + settings.batch_size]
            images = model.decode(np.stack([latent[(slice(None), *t.slices)] for t in batch]))
            for t, img in zip(batch, images):
                px = t.scaled(f)
                ys = slice(px.row - band_top, px.row - band_top + px.size_y)
                acc[:, ys, px.col : px.col + px.size_x] += weight * img
                wsum[ys, px.col : px.col + px.size_x] += weight
            progress.advance(len(batch))
        # Rows above the next tile row's top receive no more tiles: they are final.
        done_until = rows[index + 1] * f if index + 1 < len(rows) else bottom
        finished = done_until - band_top
        write_rows(band_top, acc[:, :finished] / wsum[:finished])
        acc, wsum = acc[:, finished:], wsum[finished:]
        band_top = done_until
