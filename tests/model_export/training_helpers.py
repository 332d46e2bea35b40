"""Helpers for the model_export tests: write small real rasters, read run summaries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TRAIN = REPO / "data" / "train"
TINY_CONFIG = REPO / "model_export" / "configs" / "tiny.toml"


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_tif(path: Path, array: np.ndarray) -> None:
    """HxW or HxWxB uint8 as a plain GeoTIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bands = array[..., None] if array.ndim == 2 else array
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[1], height=bands.shape[0],
                       count=bands.shape[2], dtype="uint8") as dst:
        dst.write(np.moveaxis(bands, -1, 0))


def read_tif(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return np.moveaxis(src.read(), 0, -1)


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())
