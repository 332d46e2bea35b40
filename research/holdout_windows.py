"""The held-out windows of every training source (model_export/configs/default.toml ``[data] holdout``), grown to
``--size`` px from the window's first row and column, moved back where the map ends first (so a held-out window
of 256 px stays inside), written as label/image GeoTIFF
pairs with the labels already in the model's codes (so that one ``dataset`` run takes all four sources).
Used by research/sampler_check_s2.sh (check S2 of docs/research/map-following-checks.md).

    python -m research.holdout_windows OUT_DIR [--size 512]
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from changeanywhere_qgis.engine.landcover.remaps import load_remap

REPO = Path(__file__).resolve().parents[1]
# source folder, label suffix, image suffix, remap (as usefulness_datasets.sh gives them) of each held-out stem
SOURCES = {"houston_16": ("oem", "tif", "tif", None), "2": ("loveda", "png", "png", "loveda"),
           "tile3_part002": ("dubai", "png", "jpg", str(REPO / "data/train/dubai/training_remap.json")),
           "IMG_067998": ("flair", "tif", "tif", "flair")}


def grown(start: int, stop: int, size: int, limit: int) -> tuple[int, int]:
    """A ``size`` span from the held-out window's start, moved back where the map ends first (inside [0, limit))."""
    if limit < size:
        raise SystemExit(f"a map of {limit} px cannot hold a {size} px window")
    begin = min(start, limit - size)
    return begin, begin + size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--size", type=int, default=512)
    a = p.parse_args()
    holdout = tomllib.loads((REPO / "model_export/configs/default.toml").read_text())["data"]["holdout"]
    (a.out / "labels").mkdir(parents=True, exist_ok=True)
    (a.out / "images").mkdir(parents=True, exist_ok=True)
    for window in holdout:
        stem = window["stem"]
        source, label_ext, image_ext, remap = SOURCES[stem]
        label_path = REPO / f"data/train/{source}/labels/{stem}.{label_ext}"
        image_path = REPO / f"data/train/{source}/images/{stem}.{image_ext}"
        with rasterio.open(label_path) as src:
            top, bottom = grown(*window["rows"], a.size, src.height)
            left, right = grown(*window["cols"], a.size, src.width)
            cut = Window(left, top, right - left, bottom - top)
            labels, transform, crs = src.read(1, window=cut), src.window_transform(cut), src.crs
        lut = load_remap(remap)
        if lut is not None:
            labels = lut[labels]
        with rasterio.open(image_path) as src:
            image = src.read((1, 2, 3), window=cut)
        profile = dict(driver="GTiff", width=a.size, height=a.size, transform=transform, crs=crs)
        with rasterio.open(a.out / "labels" / f"{source}_{stem}.tif", "w", count=1, dtype=np.uint8, **profile) as dst:
            dst.write(labels.astype(np.uint8), 1)
        with rasterio.open(a.out / "images" / f"{source}_{stem}.tif", "w", count=3, dtype=np.uint8, **profile) as dst:
            dst.write(image.astype(np.uint8))
        print(f"{source} {stem}: rows {top}-{bottom - 1}, columns {left}-{right - 1}")


if __name__ == "__main__":
    main()
