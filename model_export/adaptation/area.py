"""The user's area for ``model_export.adaptation.adapt``: their map and image read as ``generate`` reads them, the held-out
window, and the latent cache of the rest.

The pair goes through the engine's own readers (``read_semantic`` with the remap and band, ``ImageSource`` with
its grid check, alpha as nodata), so every input ``generate`` refuses is refused here with the same message,
before anything is written or trained.

The held-out window is one contiguous block of the area (``fraction`` of its pixels, the area's aspect ratio),
placed on the model's pixel multiple by the seed: the same inputs and seed hold out the same block. Its pixels
are blanked (mid-grey image, unknown class) before anything is encoded, and no latent cell within
``HOLDOUT_MARGIN`` cells of it may be part of a training crop, so neither its pixels nor the encoder's view of
them reach the denoiser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from changeanywhere_qgis.engine.errors import InputError
from changeanywhere_qgis.engine.io import ImageSource, RasterGrid, read_semantic
from changeanywhere_qgis.engine.landcover import load_remap

from model_export.training.data import dihedral, image_to_tensor_range
from model_export.training.diffusion import HOLDOUT_MARGIN, sample_batch

# The area is encoded in chunks of this many pixels a side (the whole raster at once would not fit memory).
CHUNK_PX = 512
# A latent cell is trained on when at least this share of its pixels is valid (scattered unknown pixels are
# part of every real map; the outside of an irregular map is not).
MIN_VALID_SHARE = 0.5


@dataclass
class Area:
    image: np.ndarray  # uint8 [H, W, 3]
    labels: np.ndarray  # uint8 [H, W], the model's codes; nodata holds the scheme's nodata code
    valid: np.ndarray  # bool [H, W]
    grid: RasterGrid


@dataclass(frozen=True)
class HeldOut:
    rows: tuple[int, int]
    cols: tuple[int, int]

    def intersects(self, rows: tuple[int, int], cols: tuple[int, int]) -> bool:
        return rows[0] < self.rows[1] and rows[1] > self.rows[0] and cols[0] < self.cols[1] and cols[1] > self.cols[0]

    def to_dict(self) -> dict:
        return {"rows": list(self.rows), "cols": list(self.cols)}


def read_area(semantic: str, image: str, remap, band: int, scheme) -> Area:
    """The pair as ``generate`` reads it: the engine's checks, messages and nodata rules."""
    sem = read_semantic(semantic, scheme, band, load_remap(remap))
    source = ImageSource(image, sem.grid)
    try:
        source.mask_transparent(sem, scheme.nodata_code)
        pixels = np.moveaxis(source.read_uint8(0, 0, sem.grid.height, sem.grid.width), 0, -1)
    finally:
        source.close()
    return Area(np.ascontiguousarray(pixels), sem.labels, sem.valid, sem.grid)


def choose_holdout(height: int, width: int, fraction: float, seed: int, multiple: int) -> HeldOut:
    """A block of ``fraction`` of the area with its aspect ratio, on the pixel multiple, placed by ``seed``."""
    side = math.sqrt(fraction)
    bh = max(multiple, int(round(height * side / multiple)) * multiple)
    bw = max(multiple, int(round(width * side / multiple)) * multiple)
    bh, bw = min(bh, height // multiple * multiple), min(bw, width // multiple * multiple)
    rng = np.random.default_rng([seed, 14])  # its own stream: the training draws do not move it
    r0 = multiple * int(rng.integers(0, (height - bh) // multiple + 1))
    c0 = multiple * int(rng.integers(0, (width - bw) // multiple + 1))
    return HeldOut((r0, r0 + bh), (c0, c0 + bw))


def usable_cells(area: Area, held: HeldOut, f: int) -> np.ndarray:
    """bool [H/f, W/f]: latent cells a training crop may cover (mostly valid, away from the held-out block)."""
    h, w = area.valid.shape[0] // f, area.valid.shape[1] // f
    share = area.valid[: h * f, : w * f].reshape(h, f, w, f).mean(axis=(1, 3))
    ok = share >= MIN_VALID_SHARE
    ok[max(0, held.rows[0] // f - HOLDOUT_MARGIN) : held.rows[1] // f + HOLDOUT_MARGIN,
       max(0, held.cols[0] // f - HOLDOUT_MARGIN) : held.cols[1] // f + HOLDOUT_MARGIN] = False
    return ok


def count_crops(ok: np.ndarray, crop: int) -> int:
    """How many crop x crop windows of latent cells lie wholly in ``ok``."""
    if ok.shape[0] < crop or ok.shape[1] < crop:
        return 0
    s = np.pad(np.cumsum(np.cumsum(ok.astype(np.int64), 0), 1), ((1, 0), (1, 0)))
    inside = s[crop:, crop:] - s[:-crop, crop:] - s[crop:, :-crop] + s[:-crop, :-crop]
    return int(np.count_nonzero(inside == crop * crop))


def check_trainable(area: Area, held: HeldOut, f: int, multiple: int, crop: int, fraction: float) -> None:
    """Refuse, before anything is written, an area whose training part holds no training crop."""
    if not chunks(area, held, f, multiple, crop):
        raise InputError(
            f"The area ({area.grid.width}x{area.grid.height} px) has no {crop * f}x{crop * f} px window outside the "
            f"held-out block (rows {held.rows[0]}:{held.rows[1]}, cols {held.cols[0]}:{held.cols[1]}, --holdout "
            f"{fraction:g}) and its {HOLDOUT_MARGIN * f} px margin that is mostly valid land cover, so there is nothing to "
            "train on. Give a larger area (or one with less nodata), or a smaller --holdout.")


def chunks(area: Area, held: HeldOut, f: int, multiple: int, crop: int) -> list[tuple[int, int, int, int]]:
    """(row, col, height, width) of the chunks the area is encoded in that hold at least one training crop."""
    ok = usable_cells(area, held, f)
    height, width = area.valid.shape[0] // multiple * multiple, area.valid.shape[1] // multiple * multiple
    ch, cw = min(CHUNK_PX, height), min(CHUNK_PX, width)
    found = []
    for r0 in chunk_starts(height, ch):
        for c0 in chunk_starts(width, cw):
            if count_crops(ok[r0 // f : (r0 + ch) // f, c0 // f : (c0 + cw) // f], crop):
                found.append((r0, c0, ch, cw))
    return found


def chunk_starts(size: int, chunk: int) -> list[int]:
    """Chunk origins covering [0, size); the last one pushed back to end at the edge."""
    if size <= chunk:
        return [0]
    starts = list(range(0, size - chunk + 1, chunk))
    if starts[-1] + chunk < size:
        starts.append(size - chunk)
    return starts


@torch.no_grad()
def build_cache(area: Area, held: HeldOut, vq, mean: torch.Tensor, std: torch.Tensor, f: int, multiple: int,
                crop: int, device: str) -> dict:
    """Standardised latents of the training part under the 8 flips/rotations, chunk by chunk.

    The format of ``training.diffusion.build_latent_cache`` (latents, labels, valid, factor), plus ``cells``: each
    latent cell's index in the area's latent grid, so every crop drawn can be traced back to the area's pixels.
    """
    image = area.image.copy()
    labels = np.where(area.valid, area.labels, 0).astype(np.uint8)
    image[held.rows[0] : held.rows[1], held.cols[0] : held.cols[1]] = 127  # as data.masked_for_holdout does
    labels[held.rows[0] : held.rows[1], held.cols[0] : held.cols[1]] = 0
    ok = usable_cells(area, held, f)
    cell_index = np.arange(ok.size, dtype=np.int64).reshape(ok.shape)
    mean, std = mean.reshape(1, -1, 1, 1).to(device), std.reshape(1, -1, 1, 1).to(device)
    cache = {"latents": [], "labels": [], "valid": [], "cells": [], "factor": f, "cell_grid": list(ok.shape)}
    for r0, c0, ch, cw in chunks(area, held, f, multiple, crop):
        cells = cell_index[r0 // f : (r0 + ch) // f, c0 // f : (c0 + cw) // f]
        img, lab = image[r0 : r0 + ch, c0 : c0 + cw], labels[r0 : r0 + ch, c0 : c0 + cw]
        for k in range(8):
            x = torch.from_numpy(image_to_tensor_range(np.ascontiguousarray(dihedral(img, k))))[None].to(device)
            z = (vq.encode(x).latents - mean) / std
            turned = np.ascontiguousarray(dihedral(cells, k))
            cache["latents"].append(z[0].cpu().half())
            cache["labels"].append(torch.from_numpy(np.ascontiguousarray(dihedral(lab, k))))
            cache["valid"].append(torch.from_numpy(ok.flat[turned]))
            cache["cells"].append(torch.from_numpy(turned))
    return cache


def crop_pixels(cache: dict, entry: int, r: int, c: int, crop: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The area's pixel rows and cols (half-open) that a crop of the cache covers."""
    cells = cache["cells"][entry][r : r + crop, c : c + crop].numpy()
    rows, cols = np.divmod(cells, cache["cell_grid"][1])
    f = cache["factor"]
    return (int(rows.min()) * f, (int(rows.max()) + 1) * f), (int(cols.min()) * f, (int(cols.max()) + 1) * f)


def draw_batch(rng: np.random.Generator, cache: dict, crop: int, batch: int) -> tuple[torch.Tensor, np.ndarray, list]:
    """``training.diffusion.sample_batch`` that also says where each crop came from (entry, row, col)."""
    where: list = []
    x0, labels = sample_batch(rng, cache, crop, batch, where=where)
    return x0, labels, where
