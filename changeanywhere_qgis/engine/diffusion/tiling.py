"""Tile arithmetic for rasters larger than the model's tile.

All tiles have the same size (so they batch), overlap their neighbours, and the last tile of a
row or column is pushed back to end at the canvas edge. Overlaps are fused with feathered
weights: every step's noise predictions (MultiDiffusion), the encoder's latents and the decoder's
pixels, so no tile edge shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    row: int  # top, in canvas pixels of the grid's own resolution
    col: int
    size_y: int
    size_x: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row, self.row + self.size_y), slice(self.col, self.col + self.size_x)

    def scaled(self, factor: int) -> "Tile":
        return Tile(self.row * factor, self.col * factor, self.size_y * factor, self.size_x * factor)


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Where tiles of ``size`` with ``overlap`` start along ``length`` (the last pushed back to end at the edge)."""
    if length <= size:
        return [0]
    stride = max(size - overlap, 1)
    count = math.ceil((length - size) / stride) + 1
    starts = [min(i * stride, length - size) for i in range(count)]
    return sorted(set(starts))


@dataclass(frozen=True)
class TileGrid:
    """Tiles over a canvas of ``height`` x ``width`` cells (latent cells for the sampler)."""

    height: int
    width: int
    tile: int
    overlap: int

    def __post_init__(self) -> None:
        if self.overlap >= self.tile:
            raise ValueError(f"tile overlap {self.overlap} must be smaller than the tile {self.tile}")

    @property
    def tile_shape(self) -> tuple[int, int]:
        return min(self.tile, self.height), min(self.tile, self.width)

    @property
    def tiles(self) -> list[Tile]:
        ty, tx = self.tile_shape
        return [
            Tile(r, c, ty, tx)
            for r in tile_starts(self.height, ty, self.overlap)
            for c in tile_starts(self.width, tx, self.overlap)
        ]

    def weight(self, ramp_scale: int = 1) -> np.ndarray:
        """Feathered tile weight (float32 [ty, tx]): linear ramps across the overlap, never zero."""
        ty, tx = self.tile_shape
        ramp = max(self.overlap * ramp_scale, 1)

        def profile(n: int) -> np.ndarray:
            i = np.arange(n, dtype=np.float32)
            return np.clip(np.minimum(i + 0.5, n - i - 0.5) / ramp, 1e-3, 1.0)

        return np.outer(profile(ty), profile(tx)).astype(np.float32)

    def weight_sum(self) -> np.ndarray:
        """Sum of all tiles' weights over the canvas (the fusion's normaliser)."""
        total = np.zeros((self.height, self.width), dtype=np.float32)
        w = self.weight()
        for t in self.tiles:
            total[t.slices] += w
        return total

    def batches(self, batch_size: int, tiles: "list[Tile] | tuple[Tile, ...] | None" = None) -> list[list[Tile]]:
        """The tiles (None: all of the grid's; else a subset, in the grid's raster order) in batches of ``batch_size``."""
        tiles = self.tiles if tiles is None else list(tiles)
        return [tiles[i : i + batch_size] for i in range(0, len(tiles), batch_size)]


def canvas_size(length: int, multiple_of: int) -> int:
    """Padded length: a whole multiple of the model's size granule (rasters smaller than a tile are one tile)."""
    return math.ceil(length / multiple_of) * multiple_of


def fuse(grid: TileGrid, batches: list[list[Tile]], run, out, progress=None) -> None:
    """Each batch's tile outputs (``run(index, batch)`` -> [N, C, ty, tx]) averaged with feathered weights where tiles
    overlap, into ``out`` ([C, height, width]: an array, or a canvas of files written by whole rows).

    Only one band of tile rows is summed in memory: as tiles come in raster order, the rows above the next tile's top
    receive no more tiles, so they are divided by their weight sum and written out. Per cell, the same sums in the same
    order as a whole-canvas accumulator: the same numbers. ``batches`` may hold only some of the grid's tiles (an
    inpainting run's, in raster order): cells that no tile covers are written as 0."""
    weight = grid.weight()
    channels = out.shape[0]
    top = 0
    acc = np.zeros((channels, 0, grid.width), dtype=np.float32)
    wsum = np.zeros((0, grid.width), dtype=np.float32)

    def grow(rows: int):
        nonlocal acc, wsum
        if rows > acc.shape[1]:
            more = rows - acc.shape[1]
            acc = np.concatenate([acc, np.zeros((channels, more, grid.width), np.float32)], axis=1)
            wsum = np.concatenate([wsum, np.zeros((more, grid.width), np.float32)], axis=0)

    for index, batch in enumerate(batches):
        for tile, value in zip(batch, run(index, batch)):
            grow(tile.row + tile.size_y - top)
            rows, cols = slice(tile.row - top, tile.row - top + tile.size_y), slice(tile.col, tile.col + tile.size_x)
            acc[:, rows, cols] += weight * value
            wsum[rows, cols] += weight
        if progress is not None:
            progress.advance(len(batch))
        done = batches[index + 1][0].row if index + 1 < len(batches) else grid.height
        if done > top:
            grow(done - top)
            out[:, top:done, :] = weighted_mean(acc[:, : done - top], wsum[: done - top])
            acc, wsum, top = acc[:, done - top :], wsum[done - top :], done
    if top < grid.height:  # no tile at all (an inpainting run without change): nothing covers the canvas
        out[:, top:, :] = np.zeros((channels, grid.height - top, grid.width), np.float32)


def weighted_mean(acc: np.ndarray, wsum: np.ndarray) -> np.ndarray:
    """``acc / wsum``, 0 where no tile covers a cell (wsum 0); where tiles do, exactly the division."""
    if wsum.all():
        return acc / wsum
    return np.divide(acc, wsum, out=np.zeros_like(acc), where=wsum > 0)
