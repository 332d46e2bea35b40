"""One sample written in its layout, and its change label read back whatever the layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...landcover import ClassScheme
from .choice import parts, sample_files
from .files import read_raster, write_raster
from .own_classes import class_maps
from .second import SecondClasses, colour_label, second_labels


def write_sample(root: Path, layout: str, fmt: str, name: str, *, t1: np.ndarray, t2: np.ndarray, pre: np.ndarray,
                 post: np.ndarray, mask: np.ndarray, scheme: ClassScheme, second: SecondClasses | None = None,
                 georef=None) -> dict[str, str]:
    """Write one sample's files under ``root`` (a temporary folder: the caller moves them into place).

    t1, t2: uint8 [3, H, W]; pre, post: class codes [H, W]; mask: 1 changed, 0 unchanged, 255 nodata.
    ``second``: the mapping into SECOND's classes (layouts with SECOND). ``georef``: (transform, crs) of the tile,
    used by GeoTIFFs. Returns role -> path relative to ``root``.
    """
    files = sample_files(layout, fmt, name)
    tif = fmt == "tif"
    for part in parts(layout):
        if part == "levir":
            write_raster(root / files["A"], t1, fmt, georef)
            write_raster(root / files["B"], t2, fmt, georef)
            write_raster(root / files["label"], np.where(mask == 1, 255, 0).astype(np.uint8), fmt, georef)
        elif part == "second":
            if second is None:
                raise ValueError("a layout with SECOND needs the mapping into SECOND's classes")
            label1, label2, _ = second_labels(pre, post, mask, second)
            full1, full2 = class_maps(pre, post, mask)
            write_raster(root / files["im1"], t1, fmt, georef)
            write_raster(root / files["im2"], t2, fmt, georef)
            write_raster(root / files["label1"], colour_label(label1, second), fmt, georef)
            write_raster(root / files["label2"], colour_label(label2, second), fmt, georef)
            write_raster(root / files["label1_wo_cm"], label1, fmt, georef, second.colormap() if tif else None)
            write_raster(root / files["label2_wo_cm"], label2, fmt, georef, second.colormap() if tif else None)
            write_raster(root / files["label1_full"], full1, fmt, georef, scheme.colormap() if tif else None)
            write_raster(root / files["label2_full"], full2, fmt, georef, scheme.colormap() if tif else None)
        else:
            class1, class2 = class_maps(pre, post, mask)
            write_raster(root / files["class1"], class1, fmt, georef, scheme.colormap() if tif else None)
            write_raster(root / files["class2"], class2, fmt, georef, scheme.colormap() if tif else None)
    return files


def read_change(root: Path, files: dict[str, str]) -> np.ndarray:
    """The sample's change as its files store it (bool [H, W]): LEVIR-CD's label, else where SECOND's full maps
    differ, else (SECOND datasets of earlier versions, label1 = class code where changed) label1 != 0."""
    root = Path(root)
    if "label" in files:
        return read_raster(root / files["label"])[0] == 255
    if "label1_full" in files:
        return read_raster(root / files["label1_full"])[0] != read_raster(root / files["label2_full"])[0]
    return read_raster(root / files["label1"])[0] != 0
