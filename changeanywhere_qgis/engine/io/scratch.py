"""Whole-raster arrays of large maps kept on disk, in the output's temporary folder, and read or written by window.

A 40,000 px square map is 1.6 GB per byte per pixel: its codes, validity, post-event map, change flags and
component ids would not fit in memory together. Above :data:`SCRATCH_PIXELS` they live in raw files (removed
with the temporary folder) and every access reads or writes only the window it touches, with positional reads
and writes (``os.preadv``/``os.pwrite``) into a numpy array of the window's size: nothing of the file is mapped, so
its pages stay in the system's page cache, outside the process's resident memory and address space, which stay
bounded by the window, not the raster.
Smaller maps stay numpy arrays, the same code working on both through ``array[rows, cols]``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

SCRATCH_PIXELS = 1 << 24  # above 4096 x 4096 px the whole-raster arrays go to disk
# the files of a simulated large map: codes, validity, changeable land, post-event map, changed flags, change mask
# (1 byte a pixel each) and the component ids (4)
SCRATCH_BYTES_PER_PIXEL = 10
BAND_PIXELS = 1 << 22  # pixels of one band of rows in whole-raster passes


def _read_at(fd: int, view: memoryview, offset: int) -> int:
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows: no pread; one process uses each file
    done = 0
    while done < view.nbytes:
        chunk = os.read(fd, view.nbytes - done)
        if not chunk:
            break
        view[done : done + len(chunk)] = chunk
        done += len(chunk)
    return done


def _write_at(fd: int, view: memoryview, offset: int) -> int:
    if hasattr(os, "pwrite"):
        done = 0
        while done < view.nbytes:
            done += os.pwrite(fd, view[done:], offset + done)
        return done
    os.lseek(fd, offset, os.SEEK_SET)
    done = 0
    while done < view.nbytes:
        done += os.write(fd, view[done:])
    return done


class ScratchRaster:
    """A 2-D array in a raw file: ``raster[rows, cols]`` reads a copy of a window, ``raster[rows, cols] = v`` writes one."""

    def __init__(self, path: str | Path, shape: tuple[int, int], dtype) -> None:
        self.path = Path(path)
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.ndim = 2
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        with open(self.path, "wb") as f:  # a sparse file of zeros
            f.truncate(self.shape[0] * self._row_bytes)
        self._fd = os.open(self.path, os.O_RDWR | getattr(os, "O_BINARY", 0))

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None

    def remove(self) -> None:
        """Close and delete the file now (a run's working copy that is no longer needed), not with the folder."""
        self.__del__()
        self.path.unlink(missing_ok=True)

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def _window(self, key):
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        if not (isinstance(rows, slice) and isinstance(cols, slice)):
            raise TypeError("a ScratchRaster is indexed by two slices (a window)")
        r0, r1, rs = rows.indices(self.shape[0])
        c0, c1, cs = cols.indices(self.shape[1])
        if rs != 1 or cs != 1:
            raise TypeError("a ScratchRaster window has no step")
        return r0, max(r0, r1), c0, max(c0, c1)

    def _spans(self, r0: int, r1: int, c0: int, c1: int):
        """(file offset, first row, rows) of the contiguous pieces of a window: one for whole rows, else one a row."""
        if c0 == 0 and c1 == self.shape[1]:
            return [(r0 * self._row_bytes, 0, r1 - r0)]
        return [((r0 + i) * self._row_bytes + c0 * self.dtype.itemsize, i, 1) for i in range(r1 - r0)]

    def __getitem__(self, key) -> np.ndarray:
        r0, r1, c0, c1 = self._window(key)
        if (c0, c1) != (0, self.shape[1]) and 2 * (c1 - c0) >= self.shape[1] and (r1 - r0) * self._row_bytes <= 1 << 24:
            return self[r0:r1, :][:, c0:c1].copy()  # a wide window: its whole rows in one read
        out = np.empty((r1 - r0, c1 - c0), dtype=self.dtype)
        if out.size:
            for offset, row, rows in self._spans(r0, r1, c0, c1):
                view = memoryview(out[row : row + rows]).cast("B")
                if _read_at(self._fd, view, offset) != view.nbytes:
                    raise OSError(f"short read from {self.path}")
        return out

    def __setitem__(self, key, value) -> None:
        r0, r1, c0, c1 = self._window(key)
        if r1 == r0 or c1 == c0:
            return
        data = np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=self.dtype), (r1 - r0, c1 - c0)))
        for offset, row, rows in self._spans(r0, r1, c0, c1):
            view = memoryview(data[row : row + rows]).cast("B")
            if _write_at(self._fd, view, offset) != view.nbytes:
                raise OSError(f"short write to {self.path}")


def row_bands(height: int, width: int, pixels: int = BAND_PIXELS, multiple: int = 1) -> list[slice]:
    """Bands of whole rows of about ``pixels`` each (a whole number of ``multiple`` rows), top to bottom."""
    rows = max(multiple, pixels // max(width, 1) // multiple * multiple)
    return [slice(r, min(r + rows, height)) for r in range(0, height, rows)]


def windows(height: int, width: int, size: int) -> list[tuple[slice, slice]]:
    """Square windows of ``size`` px in raster order (the last of a row or column cut at the edge)."""
    return [(slice(r, min(r + size, height)), slice(c, min(c + size, width)))
            for r, c in itertools.product(range(0, height, size), range(0, width, size))]


class Scratch:
    """Makes a run's whole-raster arrays: numpy arrays for a small raster, :class:`ScratchRaster` files in ``folder``
    for a large one (``folder`` None: always in memory)."""

    def __init__(self, folder: str | Path | None, shape: tuple[int, int], pixels: int | None = None) -> None:
        pixels = SCRATCH_PIXELS if pixels is None else pixels
        self.shape = (int(shape[0]), int(shape[1]))
        self.on_disk = folder is not None and self.shape[0] * self.shape[1] > pixels
        self.folder = Path(folder) if self.on_disk else None
        self._names = itertools.count()

    def empty(self, dtype, name: str = "array"):
        if not self.on_disk:
            return np.empty(self.shape, dtype=dtype)
        self.folder.mkdir(parents=True, exist_ok=True)
        return ScratchRaster(self.folder / f"{next(self._names)}-{name}.raw", self.shape, dtype)

    def zeros(self, dtype, name: str = "array"):
        if not self.on_disk:
            return np.zeros(self.shape, dtype=dtype)
        return self.empty(dtype, name)  # a new file reads as zeros

    def copy(self, source, name: str = "copy"):
        """A copy of ``source`` (an array or a ScratchRaster of this shape), band by band."""
        if not self.on_disk and isinstance(source, np.ndarray):
            return source.copy()
        out = self.empty(source.dtype, name)
        for b in row_bands(*self.shape):
            out[b, :] = source[b, :]
        return out


def is_scratch(array) -> bool:
    return isinstance(array, ScratchRaster)
