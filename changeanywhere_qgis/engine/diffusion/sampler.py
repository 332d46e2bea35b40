"""Tiled encoding, sampling (DDIM or DPM-Solver++ 2M) with latent mixing, and tiled decoding, in numpy.

Memory is bounded by the tile batch plus latent-resolution canvases (1/16 of the pixels for a
factor-4 model): the full-resolution one-hot map and image are never built for the whole raster, and a
large raster's canvases are files stepped window by window (canvas.py).

Latent mixing (ChangeAnywhere): for the first floor(S * s) of the S reverse steps, the unchanged
area of the latent is replaced by the pre-event latent noised to the current timestep, so the
unchanged land is held to the pre-event image while the changed land follows its new class; the
remaining steps run freely so the whole image settles into one consistent scene. Two ways to hold a cell
(``SamplerSettings.mixing``):

- ``"latent"`` (the paper's): before the network call, the cell's state is replaced by the pre-event latent noised
  to the step's timestep with a fresh draw. A multistep solver's history does not hold for such a cell, so it takes
  that step's first-order update (schedule.DPMSolverPP2M.step).
- ``"prediction"``: after the network call, the cell's clean-latent prediction is replaced by the pre-event latent
  before the solver's update, as blended and inpainting samplers do. The cell then follows the solver's own
  trajectory towards the pre-event latent with the noise it started from: no fresh draw, and a history that a
  multistep solver can use (the held prediction is the same latent at every step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import InputError
from ..progress import Progress
from .canvas import LatentCanvases
from .model_package import ModelPackage
from .schedule import DEFAULT_ETA, DEFAULT_SAMPLER, DEFAULT_STEPS, DPMSolverPP2M
from .tiling import Tile, TileGrid, fuse, weighted_mean

MIXINGS = ("latent", "prediction")
DEFAULT_MIXING = "prediction"  # by rule (1) of check S2 (docs/research/map-following-checks.md): DDIM 50 keeps its figures


def check_mixing(mixing: str) -> None:
    if mixing not in MIXINGS:
        raise InputError(f"Unknown latent mixing {mixing!r}. Choose one of {', '.join(MIXINGS)} (latent: the unchanged "
                         "cells' noised state replaced, the paper's; prediction: their clean-latent prediction replaced "
                         "before the solver's update).")


@dataclass(frozen=True)
class SamplerSettings:
    steps: int = DEFAULT_STEPS
    eta: float = DEFAULT_ETA
    tile_overlap_px: int = 64  # pixels; the latent grid uses tile_overlap_px // downsample
    batch_size: int = 4
    sampler: str = DEFAULT_SAMPLER  # "ddim" or "dpmpp-2m" (schedule.SAMPLERS)
    tile_px: int | None = None  # the sampler's tile, pixels; None: the model's own tile
    mixing: str = DEFAULT_MIXING  # how latent mixing holds a cell: "latent" or "prediction" (MIXINGS, module docstring)


@dataclass(frozen=True)
class KnownContent:
    """What latent mixing holds fixed: the pre-event latent, where the land is unchanged."""

    latent: np.ndarray  # [C, h, w] pre-event latent (an array, or a large raster's LatentFile)
    unchanged: np.ndarray  # [h, w] float32, 1 unchanged, 0 changed (an array or a scratch file)
    correlation: float  # s in [0, 1]: the fraction of steps that mix
    # Inpainting (inpaint.py), differential diffusion: per cell, the share h of the last steps in which it is drawn
    # (``strength``, an [h, w] float32 plane; 1: drawn throughout, 0: pinned throughout); it replaces ``unchanged`` and
    # ``correlation``. A cell is pinned for the first floor(S (1 - h)) steps and, if it is released before the end, starts
    # again from the known latent noised to its first free step (its tiles may not have run while it was pinned); a cell
    # never released ends as the known latent itself. ``tile_strength``: per tile of the grid the largest h it holds: a
    # tile runs from the step its first cell is released (never, at 0), so the cost follows the change.
    strength: np.ndarray | None = None
    tile_strength: tuple[float, ...] | None = None

    def release(self, h, steps: int):
        """The first step at which cells of strength ``h`` (an array or a number) are drawn; ``steps``: never."""
        return np.floor(steps * (1.0 - np.asarray(h, dtype=np.float64)) + 1e-9).astype(np.int64)

    def mixed(self, h: np.ndarray, i: int, steps: int) -> np.ndarray:
        """float32 1 where step ``i`` replaces a cell of strength ``h`` by the known latent: pinned, or released now."""
        first = self.release(h, steps)
        return ((i < first) | ((i == first) & (first > 0))).astype(np.float32)

    def pinned(self, h: np.ndarray, i: int, steps: int) -> np.ndarray:
        """float32 1 where step ``i`` holds a cell of strength ``h`` to the known latent (``"prediction"`` mixing: a
        released cell is already on the solver's trajectory, so it needs no restart)."""
        return (i < self.release(h, steps)).astype(np.float32)

    def mixing_steps(self, steps: int) -> int:
        return int(math.floor(steps * self.correlation))


def latent_grid(model: ModelPackage, height_px: int, width_px: int, overlap_px: int, tile_px: int | None = None) -> TileGrid:
    """The latent tiles of a padded canvas: ``tile_px`` (None: the model's tile), cut only where the canvas is larger."""
    f = model.downsample
    return TileGrid(height_px // f, width_px // f, (tile_px or model.tile_size) // f, overlap_px // f)


def encode(
    model: ModelPackage, read_image: Callable[[int, int, int, int], np.ndarray], grid: TileGrid,
    settings: SamplerSettings, progress: Progress, canvases: LatentCanvases | None = None,
    tiles: tuple[Tile, ...] | None = None,
):
    """Encode an image tile by tile into one latent canvas, fusing overlaps.

    ``read_image(row, col, height, width)`` returns float32 [3, height, width] in [-1, 1] (pixels). ``tiles``: only
    these of the grid's tiles (an inpainting run's; the cells none covers stay 0), None: all.
    """
    f = model.downsample
    canvases = canvases or LatentCanvases(model.latent_channels, (grid.height, grid.width))
    latent = canvases.canvas("encoded")

    def run(_index: int, batch) -> np.ndarray:
        return model.encode(np.stack([read_image(t.row * f, t.col * f, t.size_y * f, t.size_x * f) for t in batch]))

    fuse(grid, grid.batches(settings.batch_size, tiles), run, latent, progress)
    return latent


def sample(
    model: ModelPackage,
    semantic: np.ndarray,
    grid: TileGrid,
    settings: SamplerSettings,
    rng: np.random.Generator,
    progress: Progress,
    known: KnownContent | None = None,
    canvases: LatentCanvases | None = None,
):
    """Generate the latent of an image that obeys ``semantic`` (uint8 codes over the padded canvas, pixels).

    Every step, each tile's prediction is computed and the overlapping predictions are averaged
    with feathered weights before one solver update of the whole canvas (MultiDiffusion). ``canvases``
    (None: in memory) makes the latent canvases: files for a large raster, stepped by window.
    """
    f = model.downsample
    schedule, scheme = model.schedule, model.scheme
    canvases = canvases or LatentCanvases(model.latent_channels, (grid.height, grid.width))
    timesteps = schedule.timesteps(settings.steps)
    soft = known is not None and known.strength is not None
    mixing = known.mixing_steps(settings.steps) if known is not None and not soft else 0
    multistep = DPMSolverPP2M(schedule, settings.steps) if settings.sampler == "dpmpp-2m" else None

    batches = grid.batches(settings.batch_size)
    if soft:  # inpainting: a step runs only the tiles with a cell drawn at it
        first = known.release(np.asarray(known.tile_strength), settings.steps)
        tiles = grid.tiles
        by_step = {int(i): grid.batches(settings.batch_size, [t for t, r in zip(tiles, first) if r <= i])
                   for i in sorted(set(first.tolist())) if i < settings.steps}
    # On the GPU each batch's conditioning is uploaded once for all steps; on the CPU it is
    # rebuilt per step, so memory stays bounded by the tile batch.
    kept = {} if model.bind_device is not None else None

    def condition(batch):
        key = tuple(batch)  # the batch's tiles: an inpainting run's steps batch different subsets of the grid
        if kept is not None and key in kept:
            return kept[key]
        made = model.condition(np.concatenate([scheme.one_hot(semantic[tile.scaled(f).slices]) for tile in batch]))
        if kept is not None:
            kept[key] = made
        return made

    x = canvases.normal(rng, "x")
    prediction = canvases.canvas("prediction")
    history = canvases.canvas("history") if multistep is not None else None
    hold = settings.mixing == "prediction"
    for i, t in enumerate(timesteps):
        if soft:
            which = known.pinned if hold else known.mixed
            fresh = lambda chunk, i=i, which=which: which(chunk.of_plane(known.strength), i, settings.steps)  # noqa: E731
            step_batches = by_step[max(k for k in by_step if k <= i)] if any(k <= i for k in by_step) else []
        else:
            fresh = (lambda chunk: chunk.of_plane(known.unchanged)) if i < mixing else None
            step_batches = batches
        if fresh is not None and not hold:
            _mix_known(canvases, x, known, schedule, int(t), rng, fresh)

        def denoise(_index: int, batch, t=t) -> np.ndarray:
            latents = np.stack([x[(slice(None), *tile.slices)] for tile in batch])
            return model.denoise_with(latents, np.full(len(batch), t, dtype=np.int64), condition(batch))

        fuse(grid, step_batches, denoise, prediction, progress)
        if fresh is not None and hold:
            # after the network call, so every held cell (those of tiles that did not run as well) gets its prediction
            _hold_prediction(canvases, x, prediction, known, schedule, int(t), fresh)
        if multistep is not None:
            # a held cell's state came from the solver's last update, so its second-order correction holds
            _multistep_update(canvases, multistep, i, x, prediction, history, None if hold else fresh)
        else:
            _ddim_update(canvases, schedule, int(t), schedule.previous_timestep(int(t), settings.steps), x, prediction,
                         settings.eta, rng)
    if soft:  # inpainting: the cells never released are the known latent itself
        for chunk in canvases.chunks():
            keep = known.mixed(chunk.of_plane(known.strength), len(timesteps), settings.steps)
            chunk.put(x, keep * chunk.of(known.latent) + (1.0 - keep) * chunk.of(x))
    canvases.discard(prediction, history)
    return x


def _mix_known(canvases: LatentCanvases, x, known: KnownContent, schedule, t: int, rng: np.random.Generator, keep_of) -> None:
    """Latent mixing: the cells of ``x`` that ``keep_of(chunk)`` marks (the unchanged ones) replaced by the pre-event
    latent noised to ``t``."""
    for chunk in canvases.chunks():
        xs, keep = chunk.of(x), keep_of(chunk)
        noised = schedule.q_sample(chunk.of(known.latent), t, rng.standard_normal(xs.shape, dtype=np.float32))
        chunk.put(x, keep * noised + (1.0 - keep) * xs)


def _hold_prediction(canvases: LatentCanvases, x, prediction, known: KnownContent, schedule, t: int, keep_of) -> None:
    """Prediction mixing: the cells that ``keep_of(chunk)`` marks get the network output whose clean latent at their
    state is the pre-event latent (schedule.prediction_for)."""
    for chunk in canvases.chunks():
        keep = keep_of(chunk)
        held = schedule.prediction_for(chunk.of(x), t, chunk.of(known.latent))
        chunk.put(prediction, keep * held + (1.0 - keep) * chunk.of(prediction))


def _ddim_update(canvases: LatentCanvases, schedule, t: int, t_prev: int, x, prediction, eta: float,
                 rng: np.random.Generator) -> None:
    for chunk in canvases.chunks():
        xs = chunk.of(x)
        noise = rng.standard_normal(xs.shape, dtype=np.float32) if eta > 0 else None
        chunk.put(x, schedule.ddim_step(xs, t, t_prev, chunk.of(prediction), eta=eta, noise=noise))


def _multistep_update(canvases: LatentCanvases, multistep: DPMSolverPP2M, i: int, x, prediction, history, fresh) -> None:
    """One DPM-Solver++ 2M step; ``history`` holds the last step's clean-latent prediction (none before step 0)."""
    for chunk in canvases.chunks():
        replaced = fresh(chunk) if fresh is not None else None
        x_next, x0 = multistep.update(i, chunk.of(x), chunk.of(prediction), chunk.of(history) if i > 0 else None, replaced)
        chunk.put(history, x0)
        chunk.put(x, x_next)


def decode(
    model: ModelPackage, latent: np.ndarray, grid: TileGrid, settings: SamplerSettings,
    write_rows: Callable[[int, np.ndarray], None], progress: Progress, tiles: tuple[Tile, ...] | None = None,
) -> None:
    """Decode the latent canvas tile by tile, blending overlaps, and hand finished rows to ``write_rows``.

    Only one band of tile rows is held at full resolution at a time: ``write_rows(row_px, rgb)``
    receives float32 [3, rows, width_px] in [-1, 1], top to bottom, every row of the canvas. ``tiles``: only these of
    the grid's tiles (an inpainting run's; the pixels none covers are 0), None: all.
    """
    f = model.downsample
    weight = np.kron(grid.weight(), np.ones((f, f), dtype=np.float32))
    width_px, height_px = grid.width * f, grid.height * f
    by_row: dict[int, list] = {}
    for tile in grid.tiles if tiles is None else tiles:
        by_row.setdefault(tile.row, []).append(tile)
    rows = sorted(by_row)
    band_top = 0
    acc = np.zeros((3, 0, width_px), dtype=np.float32)
    wsum = np.zeros((0, width_px), dtype=np.float32)

    def grow(extent: int):
        nonlocal acc, wsum
        if extent > acc.shape[1]:
            more = extent - acc.shape[1]
            acc = np.concatenate([acc, np.zeros((3, more, width_px), np.float32)], axis=1)
            wsum = np.concatenate([wsum, np.zeros((more, width_px), np.float32)], axis=0)

    for index, row in enumerate(rows):
        row_tiles = by_row[row]
        bottom = (row + row_tiles[0].size_y) * f
        grow(bottom - band_top)
        for start in range(0, len(row_tiles), settings.batch_size):
            batch = row_tiles[start : start + settings.batch_size]
            images = model.decode(np.stack([latent[(slice(None), *t.slices)] for t in batch]))
            for t, img in zip(batch, images):
                px = t.scaled(f)
                ys = slice(px.row - band_top, px.row - band_top + px.size_y)
                acc[:, ys, px.col : px.col + px.size_x] += weight * img
                wsum[ys, px.col : px.col + px.size_x] += weight
            progress.advance(len(batch))
        # Rows above the next tile row's top receive no more tiles: they are final.
        done_until = rows[index + 1] * f if index + 1 < len(rows) else max(bottom, height_px)
        finished = min(done_until, bottom) - band_top
        write_rows(band_top, weighted_mean(acc[:, :finished], wsum[:finished]))
        acc, wsum = acc[:, finished:], wsum[finished:]
        band_top += finished
        band_top = _write_uncovered(write_rows, band_top, done_until, width_px, weight.shape[0])
    _write_uncovered(write_rows, band_top, height_px, width_px, weight.shape[0])  # no tile at all: every row


def _write_uncovered(write_rows: Callable[[int, np.ndarray], None], top: int, bottom: int, width_px: int, band: int) -> int:
    """Rows ``top``..``bottom`` that no decoded tile covers (a subset's gaps), as 0, a tile's height at a time."""
    for row in range(top, bottom, band):
        write_rows(row, np.zeros((3, min(band, bottom - row), width_px), np.float32))
    return max(top, bottom)
