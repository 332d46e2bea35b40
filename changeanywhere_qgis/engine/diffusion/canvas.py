"""The sampler's latent canvases: numpy arrays for a small raster, files for a large one, read and written by window.

A latent canvas is float32 [C, h, w] at 1/f of the raster a side: 0.75 bytes per raster pixel for 3 channels at f = 4,
and a run holds several (the noisy latent, the fused prediction, the pre-event latent, the multistep solver's history,
plus numpy's temporaries of each update): about 20 bytes per pixel, 32 GB at 40,000 px a side. For a large raster
(its map in scratch files, ``engine/io/scratch.py``) each channel is a file in the output's temporary folder, removed
with it; the sampler reads tiles from them, writes the fused prediction band by band (``tiling.fuse``) and steps the
canvas one channel's band of rows at a time (:meth:`LatentCanvases.chunks`), so its memory depends on the tile batch.
Every update is element by element and numpy's normal draws give the same numbers drawn whole or in pieces (in order),
so both kinds of canvas give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import Scratch, row_bands

CHUNK_CELLS = 1 << 20  # latent cells of one channel's band in the pointwise updates (4 MB of float32)
# canvases on disk at their largest, in float32 planes: the pre-event latent, the noisy latent, the fused prediction
# and the multistep history (C planes each), and the unchanged-cells plane
CANVASES_ON_DISK = 4


class LatentFile:
    """A [C, h, w] float32 canvas kept as one file per channel: ``canvas[:, rows, cols]`` reads or writes a window."""

    def __init__(self, scratch: Scratch, channels: int, name: str) -> None:
        self.planes = [scratch.zeros(np.float32, f"{name}-{c}") for c in range(channels)]
        self.shape = (channels, *scratch.shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __getitem__(self, key) -> np.ndarray:
        channels, rows, cols = key
        return np.stack([plane[rows, cols] for plane in self.planes[channels]])

    def __setitem__(self, key, value) -> None:
        channels, rows, cols = key
        value = np.asarray(value, dtype=np.float32)
        for plane, v in zip(self.planes[channels], value):
            plane[rows, cols] = v

    def remove(self) -> None:
        for plane in self.planes:
            plane.remove()


@dataclass(frozen=True)
class Chunk:
    """Where one pointwise update works: every channel of the whole canvas (in memory), or one channel's rows (on disk)."""

    channel: int | None
    rows: slice

    def of(self, canvas) -> np.ndarray:
        """This chunk of a [C, h, w] canvas (an array or a LatentFile)."""
        if self.channel is None:
            return canvas[:, self.rows]
        if isinstance(canvas, np.ndarray):
            return canvas[self.channel, self.rows]
        return canvas.planes[self.channel][self.rows, :]

    def of_plane(self, plane) -> np.ndarray:
        """This chunk's rows of an [h, w] plane (broadcast over the channels)."""
        return plane[self.rows] if isinstance(plane, np.ndarray) else plane[self.rows, :]

    def put(self, canvas, values: np.ndarray) -> None:
        if self.channel is None:
            canvas[:, self.rows] = values
        elif isinstance(canvas, np.ndarray):
            canvas[self.channel, self.rows] = values
        else:
            canvas.planes[self.channel][self.rows, :] = values


class LatentCanvases:
    """Makes one run's latent canvases of ``channels`` x ``shape`` cells: in memory, or as files in ``folder``."""

    def __init__(self, channels: int, shape: tuple[int, int], folder: str | Path | None = None) -> None:
        self.channels, self.shape = int(channels), (int(shape[0]), int(shape[1]))
        self._scratch = Scratch(folder, self.shape, pixels=0) if folder is not None else None

    @property
    def on_disk(self) -> bool:
        return self._scratch is not None

    def canvas(self, name: str):
        """A [C, h, w] canvas of zeros."""
        if self._scratch is None:
            return np.zeros((self.channels, *self.shape), dtype=np.float32)
        return LatentFile(self._scratch, self.channels, name)

    def plane(self, name: str):
        """An [h, w] float32 plane, to be filled (e.g. the unchanged cells)."""
        if self._scratch is None:
            return np.empty(self.shape, dtype=np.float32)
        return self._scratch.zeros(np.float32, name)

    def normal(self, rng: np.random.Generator, name: str):
        """A canvas of standard normal draws, the same numbers in memory and on disk."""
        if self._scratch is None:
            return rng.standard_normal((self.channels, *self.shape), dtype=np.float32)
        canvas = self.canvas(name)
        for chunk in self.chunks():
            chunk.put(canvas, rng.standard_normal((chunk.rows.stop - chunk.rows.start, self.shape[1]), dtype=np.float32))
        return canvas

    def chunks(self) -> list[Chunk]:
        """The pieces of a pointwise pass, in the order of a whole-canvas draw (channel, then rows)."""
        if self._scratch is None:
            return [Chunk(None, slice(None))]
        return [Chunk(c, rows) for c in range(self.channels) for rows in row_bands(*self.shape, pixels=CHUNK_CELLS)]

    @staticmethod
    def discard(*canvases) -> None:
        """Delete the files of canvases no longer needed (arrays are left to the garbage collector)."""
        for canvas in canvases:
            if isinstance(canvas, LatentFile):
                canvas.remove()

    def disk_bytes(self) -> int:
        """Disk the canvases may take at their largest (0 in memory)."""
        if self._scratch is None:
            return 0
        return (CANVASES_ON_DISK * self.channels + 1) * 4 * self.shape[0] * self.shape[1]
