"""A measure of seams: how much larger the pixel jumps are on tile boundaries than elsewhere.

For every column (and row) boundary c, d(c) is the mean absolute difference between pixel
columns c-1 and c. The score compares d on the columns where a tile starts or ends with d on all
other columns: about 1 means the tile boundaries cannot be told apart; clearly above 1 means seams.
"""

from __future__ import annotations

import numpy as np

from ..diffusion import tile_starts


def tile_edges(length_px: int, tile_px: int, overlap_px: int) -> list[int]:
    """Pixel positions where a tile of the sampler's grid starts or ends (inside the raster)."""
    size = min(tile_px, length_px)
    edges = set()
    for start in tile_starts(length_px, size, overlap_px):
        edges.update((start, start + size))
    return sorted(e for e in edges if 0 < e < length_px)


def seam_score(image: np.ndarray, tile_px: int, overlap_px: int) -> dict:
    """image: [bands, H, W]. Returns boundary and interior mean jumps and their ratio."""
    img = image.astype(np.float32)
    col_jumps = np.abs(np.diff(img, axis=2)).mean(axis=(0, 1))  # jump between column c and c+1 -> index c
    row_jumps = np.abs(np.diff(img, axis=1)).mean(axis=(0, 2))
    boundary, interior = [], []
    for jumps, length in ((col_jumps, img.shape[2]), (row_jumps, img.shape[1])):
        edges = {e - 1 for e in tile_edges(length, tile_px, overlap_px)}  # jump index between e-1 and e
        is_edge = np.isin(np.arange(len(jumps)), sorted(edges))
        boundary.append(jumps[is_edge])
        interior.append(jumps[~is_edge])
    b, i = np.concatenate(boundary), np.concatenate(interior)
    if b.size == 0:
        return {"boundary": float("nan"), "interior": float(i.mean()), "ratio": float("nan"), "edges": 0}
    return {"boundary": float(b.mean()), "interior": float(i.mean()), "ratio": float(b.mean() / i.mean()), "edges": int(b.size)}


def ring_seam_score(image: np.ndarray, distance: np.ndarray, radii, beyond: float) -> dict:
    """Seams around a region (an inpainted change): how much larger the pixel jumps across rings of the region are than
    the image's own jumps far from it.

    ``distance``: [H, W] each pixel's distance to the region (0 inside it); a ring at radius r is crossed by the pairs
    of neighbouring pixels (across a row or a column) with one pixel nearer than r and the other not. The reference is
    the mean jump between neighbours both at least ``beyond`` away: the image's real edges elsewhere. About 1 at every
    ring: the boundary cannot be told from the rest of the image; clearly above 1: a seam. Per ring, and the worst."""
    img = image.astype(np.float32)
    jumps = (np.abs(np.diff(img, axis=2)).mean(axis=0), np.abs(np.diff(img, axis=1)).mean(axis=0))
    pairs = ((distance[:, :-1], distance[:, 1:]), (distance[:-1, :], distance[1:, :]))
    far = np.concatenate([j[(a >= beyond) & (b >= beyond)] for j, (a, b) in zip(jumps, pairs)])
    reference = float(far.mean()) if far.size else float("nan")
    rings = {}
    for r in radii:
        crossing = np.concatenate([j[(a < r) != (b < r)] for j, (a, b) in zip(jumps, pairs)])
        mean = float(crossing.mean()) if crossing.size else float("nan")
        rings[float(r)] = {"jump": mean, "ratio": mean / reference if crossing.size else float("nan"), "pairs": int(crossing.size)}
    ratios = [v["ratio"] for v in rings.values() if not np.isnan(v["ratio"])]
    return {"reference": reference, "rings": rings, "worst": max(ratios) if ratios else float("nan")}
