"""One dataset file written or read: an 8-bit PNG (what the libraries read by default) or a GeoTIFF on the tile's
own window of the source raster (transform and CRS kept). Written with rasterio (GDAL), no other library."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning


def _profile(fmt: str, height: int, width: int, count: int, georef) -> dict:
    profile = {"width": width, "height": height, "count": count, "dtype": "uint8"}
    if fmt == "png":
        return {"driver": "PNG", **profile}
    transform, crs = georef if georef is not None else (None, None)
    profile.update(driver="GTiff", compress="deflate")
    if count == 3:
        profile["photometric"] = "RGB"
    if transform is not None:
        profile["transform"] = transform
    if crs is not None:
        profile["crs"] = crs
    return profile


def write_raster(path: Path, data: np.ndarray, fmt: str, georef=None, colormap: dict | None = None) -> None:
    """uint8 [H, W] or [3, H, W] -> PNG or GeoTIFF at ``path`` (no .aux.xml sidecar)."""
    data = data[None] if data.ndim == 2 else data
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **_profile(fmt, data.shape[1], data.shape[2], data.shape[0], georef)) as dst:
            dst.write(data.astype(np.uint8))
            if colormap is not None:
                dst.write_colormap(1, colormap)


def read_raster(path: Path) -> np.ndarray:
    """uint8 [bands, H, W] of a dataset file (PNG or GeoTIFF)."""
    with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read()
