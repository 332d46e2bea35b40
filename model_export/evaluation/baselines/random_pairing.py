"""The random-pairing baseline (after STAR, Zheng et al., ICCV 2021): two unrelated real windows, no model.

Sample ``i``'s pre-event image A is the real window the dataset command's sample ``i`` has; its post-event image B is
another window of the same group of maps (drawn, by the sample's own seed, out of every window the dataset command
could draw, in any of the maps, that does not overlap A's). The change label is where the two windows' maps differ
(where both are valid): STAR's semantic change of single-date images, pixels that differ everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from changeanywhere_qgis.engine.dataset import sample_seed
from changeanywhere_qgis.engine.errors import InputError

from .sources import Sources, class_pixels, sample_rng

STREAM = 2  # this baseline's random stream of a sample (sources.sample_rng)


@dataclass
class RandomPairSample:
    t1: np.ndarray
    t2: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    mask: np.ndarray  # 1 the maps differ, 0 they agree, 255 either has no data
    record: dict


def pair_window(sources: Sources, candidates: list[tuple[np.ndarray, np.ndarray]], index: int) -> tuple[int, int, int]:
    """(raster, row, col) of B's window: any candidate window that does not overlap A's, uniformly."""
    k, rows, cols = sources.window(index)
    t = sources.tile
    allowed = [np.ones(len(r), dtype=bool) if j != k else (np.abs(r - rows.start) >= t) | (np.abs(c - cols.start) >= t)
               for j, (r, c) in enumerate(candidates)]
    sizes = np.array([int(a.sum()) for a in allowed])
    if not sizes.sum():
        raise InputError(f"Random pairing needs windows that do not overlap: every {t} px window of these maps overlaps "
                         f"sample {index}'s. Give more or larger maps, or a smaller --tile.")
    pick = int(sample_rng(sources.settings.seed, index, STREAM).integers(sizes.sum()))
    j = int(np.searchsorted(np.cumsum(sizes), pick, side="right"))
    within = int(np.flatnonzero(allowed[j])[pick - int(sizes[:j].sum())])
    return j, int(candidates[j][0][within]), int(candidates[j][1][within])


def random_pair_sample(sources: Sources, candidates, index: int) -> RandomPairSample:
    st = sources.settings
    t = sources.tile
    k, rows, cols = sources.window(index)
    a = sources.rasters[k]
    j, row_b, col_b = pair_window(sources, candidates, index)
    b = sources.rasters[j]
    rows_b, cols_b = slice(row_b, row_b + t), slice(col_b, col_b + t)
    pre, post = a.labels[rows, cols], b.labels[rows_b, cols_b]
    valid = a.valid[rows, cols] & b.valid[rows_b, cols_b]
    mask = (pre != post).astype(np.uint8)
    mask[~valid] = 255
    record = {
        "index": index, "seed": sample_seed(st.seed, index), "seed_from": [st.seed, index], "method": "random-pairing",
        "source": {"semantic": a.semantic, "image": a.image, "band": st.band},
        "window": {"row": rows.start, "col": cols.start, "height": t, "width": t},
        "source_b": {"semantic": b.semantic, "image": b.image, "band": st.band},
        "window_b": {"row": row_b, "col": col_b, "height": t, "width": t},
        "class_pixels": {"pre": class_pixels(pre, valid), "post": class_pixels(post, valid)},
    }
    return RandomPairSample(a.pixels[:, rows, cols].copy(), b.pixels[:, rows_b, cols_b].copy(), pre.copy(), post.copy(), mask, record)
