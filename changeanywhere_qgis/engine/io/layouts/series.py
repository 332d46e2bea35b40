"""A series of dates as a dataset sample: one folder with every date, and the pairs a change detector trains on.

``series/<name>/t1.png … tN.png`` are the dates' images and ``t1_classes.png … tN_classes.png`` their land-cover maps
(the model's class codes, 0 = no data, as ``class1/``); beside them, in the layout's own folders, each consecutive
pair (T1→T2, T2→T3, …) and T1→TN is a sample of its own named ``<name>_t1_t2``, so any LEVIR-CD or SECOND reader
trains on the pairs as they are, and the split lists name the pairs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...landcover import ClassScheme
from .files import write_raster
from .own_classes import NO_DATA
from .second import SecondClasses
from .writer import write_sample

SERIES_FOLDER = "series"


def series_pairs(dates: int) -> list[tuple[int, int]]:
    """The pairs of dates a series is also written as: each consecutive pair, then T1 to TN."""
    return [(k - 1, k) for k in range(2, dates + 1)] + [(1, dates)]


def pair_name(name: str, a: int, b: int) -> str:
    return f"{name}_t{a}_t{b}"


def write_series(root: Path, layout: str, fmt: str, name: str, *, images: list[np.ndarray], maps: list[np.ndarray],
                 masks: dict[tuple[int, int], np.ndarray], valid: np.ndarray, scheme: ClassScheme,
                 second: SecondClasses | None = None, georef=None) -> tuple[dict[str, str], list[dict]]:
    """Write one series' files under ``root``: its folder and its pairs in ``layout`` (``masks[(a, b)]``: the change
    from date a to date b, for every pair of :func:`series_pairs`). Returns (role -> relative path, the pairs)."""
    files: dict[str, str] = {}
    colormap = scheme.colormap() if fmt == "tif" else None
    for k, (image, labels) in enumerate(zip(images, maps), start=1):
        files[f"{SERIES_FOLDER}/t{k}"] = rel = f"{SERIES_FOLDER}/{name}/t{k}.{fmt}"
        write_raster(root / rel, image, fmt, georef)
        files[f"{SERIES_FOLDER}/t{k}_classes"] = rel = f"{SERIES_FOLDER}/{name}/t{k}_classes.{fmt}"
        write_raster(root / rel, np.where(valid, labels, NO_DATA).astype(np.uint8), fmt, georef, colormap)
    pairs = []
    for a, b in series_pairs(len(images)):
        pair = pair_name(name, a, b)
        written = write_sample(root, layout, fmt, pair, t1=images[a - 1], t2=images[b - 1], pre=maps[a - 1], post=maps[b - 1],
                               mask=masks[(a, b)], scheme=scheme, second=second, georef=georef)
        files.update({f"t{a}_t{b}/{role}": rel for role, rel in written.items()})
        pairs.append({"name": pair, "from": a, "to": b})
    return files, pairs
